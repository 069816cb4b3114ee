"""Pipeline stages usable alone: feature sources by name, one decode for what they need, shape checks.

`extract` (feature store), the `rqvqa-kvq` predictor and the collection engines all call these; none of
them lives in the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rqvqa.errors import ConfigError, InputError
from rqvqa.sources.base import FEATURE_SOURCES, FeatureSource, Granularity, create_source
from rqvqa.video.sampling import VideoSample, sample_video
from rqvqa.zoo import accepted_options

SAMPLER_PRODUCTS = frozenset({"keyframes", "keyframes_384", "chunks", "fragments"})


def build_sources(
    names: list[str],
    device: str = "cpu",
    weights_dir: str | os.PathLike[str] | None = None,
    dtype: str | Mapping[str, str] | None = None,
    qalign_8bit: bool = False,
) -> list[FeatureSource]:
    """Create the named sources, passing `device`, `weights_dir`, `dtype` (a torch dtype name, or one per
    source name) and Q-Align's 8-bit switch to those whose constructor takes them."""
    import torch

    dtypes = dtype if isinstance(dtype, Mapping) else dict.fromkeys(names, dtype)
    for value in dtypes.values():
        if value is not None and not isinstance(getattr(torch, value, None), torch.dtype):
            raise ConfigError(f"unknown dtype {value!r} (e.g. float32, float16, bfloat16)")
    sources = []
    for name in names:
        cls = FEATURE_SOURCES.get(name)  # an unknown name raises the registry's ConfigError
        params = accepted_options(cls)
        kwargs: dict[str, Any] = {}
        if "device" in params:
            kwargs["device"] = device
        if "weights_dir" in params and weights_dir is not None:
            kwargs["weights_dir"] = weights_dir
        if "dtype" in params and dtypes.get(name) is not None:
            kwargs["dtype"] = getattr(torch, dtypes[name])
        if "load_8bit" in params and qalign_8bit:
            kwargs["load_8bit"] = True
        sources.append(create_source(name, **kwargs))
    return sources


def check_shape(source: FeatureSource, array: np.ndarray, path: str) -> np.ndarray:
    """A source's output must follow the interface: (rows, dim) per frame/chunk, (dim,) per video."""
    expected_ndim = 1 if source.granularity == Granularity.VIDEO else 2
    if array.ndim != expected_ndim or array.shape[-1] != source.dim or array.size == 0:
        raise InputError(
            f"source {source.name} returned shape {array.shape}, expected dim {source.dim}", path
        )
    if not np.isfinite(array).all():
        raise InputError(f"source {source.name} returned non-finite values", path)
    return array


def sample_for(path: str | os.PathLike[str], needs: set[str], mode: str, seed: int) -> VideoSample:
    """One decode producing every product in `needs` ("keyframes", "keyframes_384", "chunks", "fragments")."""
    unknown = set(needs) - SAMPLER_PRODUCTS
    if unknown:
        raise ConfigError(f"unknown sampler products: {', '.join(sorted(unknown))}")
    return sample_video(Path(path), mode=mode, seed=seed, **{need: True for need in needs})


@dataclass(frozen=True)
class Sampler:
    """The decode + sampling stage as a picklable callable (what a collection engine runs in its CPU
    workers for models whose networks stay in the main process or in model actors)."""

    needs: frozenset[str]
    mode: str = "official"
    seed: int = 0

    def __call__(self, path: str | os.PathLike[str], needs: frozenset[str] | None = None) -> VideoSample:
        """Decode `path` for `needs` (default: the sampler's own, the most any video needs)."""
        return sample_for(path, set(self.needs if needs is None else needs), self.mode, self.seed)

"""The feature-source interface: frozen extractors whose arrays feed the RQ-VQA regressor (`rqvqa extract`).

A feature source turns the sampled products of one video (key frames, chunks, fragments; see
`rqvqa.video.sampling.VideoSample`) into a float32 array:

- granularity ``frame``: shape (n_keyframes, dim), one row per key frame;
- granularity ``chunk``: shape (n_chunks, dim), one row per 1-s chunk (aligned with key frame i);
- granularity ``video``: shape (dim,).

A source is declared by its family (`rqvqa.registry.SourceCard`: name, class, width, weights) and subclasses
`FeatureSource`; sources that run one pre-trained network subclass `rqvqa.checkpoints.CheckpointSource`. Its
width is its card's (one home).
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rqvqa.errors import ConfigError, InputError
from rqvqa.registry import REGISTRY, RegistryError, accepted_options

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample


class Granularity(StrEnum):
    FRAME = "frame"
    CHUNK = "chunk"
    VIDEO = "video"


class _CardWidth:
    """`FeatureSource.dim`: the width declared on the source's card (a plug-in may set `dim` itself)."""

    def __get__(self, obj: Any, cls: type) -> int:
        return REGISTRY.source(cls.name).dim


class FeatureSource(ABC):
    #: registry name, e.g. "slowfast", "liqe"
    name: ClassVar[str]
    #: feature dimension (from the source's card)
    dim: ClassVar[int] = _CardWidth()  # type: ignore[assignment]
    granularity: ClassVar[Granularity]
    #: sampler products this source reads from a `VideoSample`: any of
    #: "keyframes" (native resolution), "keyframes_384", "chunks", "fragments"
    needs: ClassVar[frozenset[str]]
    #: bump when the computation changes in a way that invalidates stored features
    version: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        """Everything that changes the numbers (weights id, sampling options...). JSON-serialisable."""
        return {}

    def config_hash(self, sampling: dict[str, Any] | None = None) -> str:
        """Short stable hash of (name, version, config[, sampling]): the feature-store key of this source's
        output. `sampling` holds the sampling options that shaped the input (mode, fragment seed), so
        features of differently sampled inputs never share a key."""
        payload = {"name": self.name, "version": self.version, **self.config()}
        if sampling:
            payload["sampling"] = sampling
        blob = json.dumps(payload, sort_keys=True, allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def check(self) -> None:  # noqa: B027 - sources without weights have nothing to find
        """Raise now when what `setup` needs is missing (a checkpoint), before any video is decoded."""

    def setup(self) -> None:  # noqa: B027 - sources without a network have nothing to load
        """Load what `extract` needs (idempotent; where the model stage runs)."""

    @abstractmethod
    def extract(self, sample: VideoSample) -> np.ndarray:
        """Return the feature array of one video (see the module docstring for shapes)."""


def source_class(name: str) -> type[FeatureSource]:
    try:
        return REGISTRY.source_class(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def build_sources(
    names: list[str],
    device: str = "cpu",
    weights_dir: str | os.PathLike[str] | None = None,
    dtype: str | Mapping[str, str] | None = None,
    qalign_8bit: bool = False,
) -> list[FeatureSource]:
    """Create the named sources, passing `device`, `weights_dir`, `dtype` (a torch dtype name, or one per
    source name) and Q-Align's 8-bit switch to those whose constructor takes them."""
    dtypes = dtype if isinstance(dtype, Mapping) else dict.fromkeys(names, dtype)
    if any(value is not None for value in dtypes.values()):
        from rqvqa.precision import torch_dtype

        for value in dtypes.values():
            torch_dtype(value)  # an unknown name is refused before anything is built
    sources = []
    for name in names:
        cls = source_class(name)
        params = accepted_options(cls)
        kwargs: dict[str, Any] = {}
        if "device" in params:
            kwargs["device"] = device
        if "weights_dir" in params and weights_dir is not None:
            kwargs["weights_dir"] = weights_dir
        if "dtype" in params and dtypes.get(name) is not None:
            kwargs["dtype"] = dtypes[name]
        if "load_8bit" in params and qalign_8bit:
            kwargs["load_8bit"] = True
        sources.append(cls(**kwargs))
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

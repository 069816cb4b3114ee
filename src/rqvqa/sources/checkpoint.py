"""Base class of the frozen sources that run one pre-trained network loaded from one checkpoint."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rqvqa.errors import ConfigError
from rqvqa.sources.base import FeatureSource


def torch_dtype(value: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype from itself or its name ("float16", "bfloat16", "float32"; what `--dtype` gives)."""
    if value is None or isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"unknown dtype {value!r} (float32, float16, bfloat16)")
    return dtype


class CheckpointSource(FeatureSource):
    """`weights`: a registry name (`rqvqa.weights`) or a checkpoint path; `model`: an already built network
    (tests, benchmarks), which takes precedence. The network is loaded on first use, on `device` in `dtype`.
    """

    #: registry name of the checkpoint used when none is given
    default_weights: ClassVar[str]

    def __init__(
        self,
        weights: str | Path | None = None,
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float32,
        model: nn.Module | None = None,
    ):
        self.weights = str(weights or self.default_weights)
        self.weights_dir = weights_dir
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self._model = model
        self._injected = model is not None
        self._sha256: str | None = None

    def config(self) -> dict[str, Any]:
        # fixed at construction, so loading the weights lazily never changes the feature-store key; the
        # compute dtype is part of it because fp16/bf16 move the features measurably, and the weights' content
        # hash because another file under the same name (a retrained LIQE.pt) gives other features
        config: dict[str, Any] = {
            "weights": "injected" if self._injected else Path(self.weights).name,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        digest = None if self._injected else self._content_sha256()
        if digest is not None:
            config["sha256"] = digest
        return config

    def _content_sha256(self) -> str | None:
        """sha256 of the checkpoint (hashed once per path, size and mtime), None while it cannot be found
        (no feature is computed then, so no store entry can carry that key)."""
        if self._sha256 is None:
            from rqvqa.errors import WeightsError
            from rqvqa.weights import content_sha256

            try:
                self._sha256 = content_sha256(self.weights_path())
            except (WeightsError, OSError):
                return None
        return self._sha256

    def weights_path(self) -> Path:
        path = Path(self.weights)
        if path.is_file():
            return path
        from rqvqa.weights import resolve

        return resolve(self.weights, self.weights_dir)

    @abstractmethod
    def load(self, path: Path) -> nn.Module:
        """Build the network from the checkpoint at `path`."""

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = self.load(self.weights_path())
        return self._model.to(self.device, self.dtype).eval()

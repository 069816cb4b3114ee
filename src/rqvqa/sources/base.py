"""The feature-source interface and registry.

A feature source is a frozen extractor: it turns the sampled products of one video (key frames, chunks,
fragments; see `rqvqa.video.sampling.VideoSample`) into a float32 array:

- granularity ``frame``: shape (n_keyframes, dim), one row per key frame;
- granularity ``chunk``: shape (n_chunks, dim), one row per 1-s chunk (aligned with key frame i);
- granularity ``video``: shape (dim,).

A new source is one module in `rqvqa.sources` that subclasses `FeatureSource` and decorates the class with
`@register_source`; add the module name to `_SOURCE_MODULES` so the registry can find it lazily.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rqvqa.errors import ConfigError

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample


class Granularity(StrEnum):
    FRAME = "frame"
    CHUNK = "chunk"
    VIDEO = "video"


class FeatureSource(ABC):
    #: registry name, e.g. "slowfast", "liqe"
    name: ClassVar[str]
    #: feature dimension
    dim: ClassVar[int]
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
        blob = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @abstractmethod
    def extract(self, sample: VideoSample) -> np.ndarray:
        """Return the feature array of one video (see the module docstring for shapes)."""


_REGISTRY: dict[str, type[FeatureSource]] = {}

# Modules that register sources when imported (imported lazily, on first lookup).
_SOURCE_MODULES: list[str] = [
    "rqvqa.sources.stats",
    "rqvqa.sources.fastvqa",
    "rqvqa.sources.slowfast",
    "rqvqa.sources.qalign",
    "rqvqa.sources.liqe",
]


def register_source(cls: type[FeatureSource]) -> type[FeatureSource]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"feature source {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in _SOURCE_MODULES:
        importlib.import_module(module)


def available_sources() -> dict[str, type[FeatureSource]]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def create_source(name: str, **kwargs: Any) -> FeatureSource:
    sources = available_sources()
    if name not in sources:
        raise ConfigError(f"unknown feature source {name!r}; available: {', '.join(sources) or 'none'}")
    return sources[name](**kwargs)

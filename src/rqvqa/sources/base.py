"""The feature-source interface and registry.

A feature source is a frozen extractor: it turns the sampled products of one video (key frames, chunks,
fragments; see `rqvqa.video.sampling.VideoSample`) into a float32 array:

- granularity ``frame``: shape (n_keyframes, dim), one row per key frame;
- granularity ``chunk``: shape (n_chunks, dim), one row per 1-s chunk (aligned with key frame i);
- granularity ``video``: shape (dim,).

A new source is one module in `rqvqa.sources` that subclasses `FeatureSource` and decorates the class with
`@register_source`; add its `Card` to `FEATURE_SOURCES` so the registry can find it lazily.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rqvqa.zoo import Card, LazyRegistry

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
        blob = json.dumps(payload, sort_keys=True, allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @abstractmethod
    def extract(self, sample: VideoSample) -> np.ndarray:
        """Return the feature array of one video (see the module docstring for shapes)."""


#: every feature source, declared without importing it (the mechanism is the zoo's, see `rqvqa.zoo`)
FEATURE_SOURCES: LazyRegistry[FeatureSource] = LazyRegistry(
    "feature source",
    [
        Card("stats", "rqvqa.sources.stats"),
        Card("fastvqa", "rqvqa.sources.fastvqa", weights=("fastvqa-b",)),
        Card("slowfast", "rqvqa.sources.slowfast", weights=("slowfast-r50",)),
        Card("qalign", "rqvqa.sources.qalign", weights=("qalign-one-align-1", "qalign-one-align-2")),
        Card("liqe", "rqvqa.sources.liqe", weights=("liqe",)),
    ],
)
register_source = FEATURE_SOURCES.register


def available_sources() -> dict[str, type[FeatureSource]]:
    return FEATURE_SOURCES.classes()


def create_source(name: str, **kwargs: Any) -> FeatureSource:
    return FEATURE_SOURCES.create(name, **kwargs)

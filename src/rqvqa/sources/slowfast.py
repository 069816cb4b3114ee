"""SlowFast R50 fast-pathway feature source: one 256-d vector per 1-s chunk (32 frames at 224x224)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rqvqa.errors import InputError
from rqvqa.nets.slowfast import FastPathwayLoad, SlowFastFastPathway, load_slowfast_fast
from rqvqa.sources.base import FeatureSource, Granularity, register_source
from rqvqa.video.sampling import chunks_to_tensor

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

WEIGHTS_NAME = "slowfast-r50"


@register_source
class SlowFastSource(FeatureSource):
    name: ClassVar[str] = "slowfast"
    dim: ClassVar[int] = 256
    granularity: ClassVar[Granularity] = Granularity.CHUNK
    needs: ClassVar[frozenset[str]] = frozenset({"chunks"})
    version: ClassVar[int] = 1

    def __init__(
        self,
        weights: str | Path = WEIGHTS_NAME,
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        chunks_per_batch: int = 4,
        model: SlowFastFastPathway | None = None,
    ):
        """`weights`: a registry name or a checkpoint path; `model`: an already built network (tests,
        benchmarks), which takes precedence. The network is loaded on first use."""
        self.weights = str(weights)
        self.weights_dir = weights_dir
        self.device = torch.device(device)
        self.dtype = dtype
        self.chunks_per_batch = chunks_per_batch
        self._model = model
        self._injected = model is not None
        self.load_report: FastPathwayLoad | None = None

    def config(self) -> dict[str, Any]:
        # fixed at construction: loading the weights lazily must not change the feature-store key
        weights = "injected" if self._injected else Path(self.weights).name
        return {"weights": weights, "dtype": str(self.dtype).removeprefix("torch.")}

    @property
    def model(self) -> SlowFastFastPathway:
        if self._model is None:
            path = Path(self.weights)
            if not path.is_file():
                from rqvqa.weights import resolve

                path = resolve(self.weights, self.weights_dir)
            # the report lists the slow-pathway/fusion/head keys the checkpoint holds and we do not use
            self._model, self.load_report = load_slowfast_fast(path)
        self._model.to(self.device, self.dtype).eval()
        return self._model

    @torch.inference_mode()
    def extract(self, sample: VideoSample) -> np.ndarray:
        chunks = sample.chunks
        if chunks is None:
            raise InputError("the video sample has no chunks (sampler run without SlowFast chunks)")
        if chunks.ndim != 5 or chunks.shape[-1] != 3 or chunks.dtype != np.uint8:
            raise InputError(f"chunks must be uint8 (n, T, H, W, 3), got {chunks.dtype} {chunks.shape}")
        model = self.model
        rows = []
        # normalise batch by batch: a float copy of all chunks of a long video would not fit in memory.
        # The fast pathway takes all 32 frames of a chunk (pytorchvideo's packing subsamples only the slow
        # pathway), so there is no temporal selection here.
        for start in range(0, len(chunks), self.chunks_per_batch):
            batch = chunks_to_tensor(chunks[start : start + self.chunks_per_batch]).to(
                self.device, self.dtype
            )
            rows.append(model.features(batch).float().cpu())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return torch.cat(rows).numpy().astype(np.float32)

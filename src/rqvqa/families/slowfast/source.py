"""SlowFast R50 fast-pathway feature source: one 256-d vector per 1-s chunk (32 frames at 224x224)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rqvqa.checkpoints import CheckpointSource
from rqvqa.errors import InputError
from rqvqa.families.slowfast.network import FastPathwayLoad, SlowFastFastPathway, load_slowfast_fast
from rqvqa.families.slowfast.preprocess import CHUNKS
from rqvqa.source import Granularity

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

WEIGHTS_NAME = "slowfast-r50"


class SlowFastSource(CheckpointSource):
    name: ClassVar[str] = "slowfast"
    granularity: ClassVar[Granularity] = Granularity.CHUNK
    needs: ClassVar[frozenset[str]] = frozenset({"chunks"})
    version: ClassVar[int] = 1
    default_weights: ClassVar[str] = WEIGHTS_NAME

    def __init__(self, *args: Any, chunks_per_batch: int = 4, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.chunks_per_batch = chunks_per_batch
        self.load_report: FastPathwayLoad | None = None

    def load(self, path: Path) -> SlowFastFastPathway:
        # the report lists the slow-pathway/fusion/head keys the checkpoint holds and we do not use
        model, self.load_report = load_slowfast_fast(path)
        return model

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
            batch = CHUNKS(chunks[start : start + self.chunks_per_batch]).to(self.device, self.dtype)
            rows.append(model.features(batch).float().cpu())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return torch.cat(rows).numpy().astype(np.float32)

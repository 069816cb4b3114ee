"""FAST-VQA-B feature source: the 768-d backbone output averaged over the clips and (T, H, W), per video.

RQ-VQA's extractor averages the backbone map `[4, 768, 16, 7, 7]` over the 4 clips, then over the last three
axes; the VQA head is not used for the feature. The fragments come from the project's seeded sampler
(`VideoSample.fragments`), so one video always gives the same feature, unlike the official code whose offsets
are unseeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rqvqa.checkpoints import CheckpointSource
from rqvqa.errors import InputError
from rqvqa.families.fastvqa.network import FastVQA, load_fastvqa
from rqvqa.families.fastvqa.preprocess import FRAGMENTS
from rqvqa.source import Granularity

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

WEIGHTS_NAME = "fastvqa-b"


def check_fragments(fragments: np.ndarray | None) -> np.ndarray:
    if fragments is None:
        raise InputError("the video sample has no fragments (sampler run without FAST-VQA fragments)")
    if fragments.ndim != 5 or fragments.shape[-1] != 3 or fragments.dtype != np.uint8:
        got = f"{fragments.dtype} {fragments.shape}"
        raise InputError(f"fragments must be uint8 (clips, T, H, W, 3), got {got}")
    return fragments


class FastVQASource(CheckpointSource):
    name: ClassVar[str] = "fastvqa"
    granularity: ClassVar[Granularity] = Granularity.VIDEO
    needs: ClassVar[frozenset[str]] = frozenset({"fragments"})
    version: ClassVar[int] = 1
    default_weights: ClassVar[str] = WEIGHTS_NAME

    def __init__(self, *args: Any, clips_per_batch: int = 4, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clips_per_batch = clips_per_batch

    def load(self, path: Path) -> FastVQA:
        return load_fastvqa(path)

    @torch.inference_mode()
    def clip_maps(self, fragments: np.ndarray) -> torch.Tensor:
        """Backbone output per clip, (clips, C, T', H', W') in the compute dtype, for the clips of one or more
        videos stacked along the first axis (normalised in float32 on the CPU exactly as upstream, then moved
        and cast; `clips_per_batch` clips per forward)."""
        model = self.model
        clips = FRAGMENTS(check_fragments(fragments)).to(self.device, self.dtype)
        return torch.cat([model.fragments_backbone(batch) for batch in clips.split(self.clips_per_batch)])

    def feature_maps(self, sample: VideoSample) -> torch.Tensor:
        """Backbone output per clip of one video."""
        return self.clip_maps(sample.fragments)

    def extract(self, sample: VideoSample) -> np.ndarray:
        maps = self.feature_maps(sample).float()
        return maps.mean(dim=0).mean(dim=(1, 2, 3)).cpu().numpy().astype(np.float32)

    @torch.inference_mode()
    def clip_scores(self, maps: torch.Tensor) -> list[float]:
        """FAST-VQA's raw score of each clip: the mean of the head's local quality map over its positions."""
        quality_map = self.model.vqa_head(maps).float()
        return quality_map.mean(dim=(1, 2, 3, 4)).cpu().tolist()

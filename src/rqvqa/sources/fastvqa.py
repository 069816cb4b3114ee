"""FAST-VQA-B feature source: the 768-d backbone output averaged over the clips and (T, H, W), per video.

RQ-VQA's extractor averages the backbone map `[4, 768, 16, 7, 7]` over the 4 clips, then over the last three
axes; the VQA head is not used for the feature. The fragments come from the project's seeded sampler
(`VideoSample.fragments`), so one video always gives the same feature, unlike the official code whose offsets
are unseeded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rqvqa.errors import InputError
from rqvqa.nets.video_swin import FASTVQA_B_SCORE_MEAN, FASTVQA_B_SCORE_STD, FastVQA, load_fastvqa
from rqvqa.sources.base import Granularity, register_source
from rqvqa.sources.checkpoint import CheckpointSource
from rqvqa.video.sampling import fragments_to_tensor
from rqvqa.zoo import Prediction, Predictor, register_predictor

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

WEIGHTS_NAME = "fastvqa-b"


@register_source
class FastVQASource(CheckpointSource):
    name: ClassVar[str] = "fastvqa"
    dim: ClassVar[int] = 768
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
    def feature_maps(self, sample: VideoSample) -> torch.Tensor:
        """Backbone output per clip, (clips, C, T', H', W') in the compute dtype."""
        if sample.fragments is None:
            raise InputError("the video sample has no fragments (sampler run without FAST-VQA fragments)")
        fragments = sample.fragments
        if fragments.ndim != 5 or fragments.shape[-1] != 3 or fragments.dtype != np.uint8:
            got = f"{fragments.dtype} {fragments.shape}"
            raise InputError(f"fragments must be uint8 (clips, T, H, W, 3), got {got}")
        model = self.model
        # normalised in float32 on the CPU exactly as upstream, then moved and cast
        clips = fragments_to_tensor(fragments).to(self.device, self.dtype)
        maps = [model.fragments_backbone(batch) for batch in clips.split(self.clips_per_batch)]
        return torch.cat(maps)

    def extract(self, sample: VideoSample) -> np.ndarray:
        maps = self.feature_maps(sample).float()
        return maps.mean(dim=0).mean(dim=(1, 2, 3)).cpu().numpy().astype(np.float32)

    @torch.inference_mode()
    def clip_scores(self, sample: VideoSample) -> list[float]:
        """FAST-VQA's raw score of each clip: the mean of the head's local quality map over its positions."""
        quality_map = self.model.vqa_head(self.feature_maps(sample)).float()
        return quality_map.mean(dim=(1, 2, 3, 4)).cpu().tolist()


def rescale_score(raw: float) -> float:
    """FAST-VQA's `vqa.py` rescaling of a raw FAST-VQA-B score to [0, 1]."""
    return float(torch.sigmoid(torch.tensor((raw - FASTVQA_B_SCORE_MEAN) / FASTVQA_B_SCORE_STD)))


@register_predictor
class FastVQAPredictor(Predictor):
    """FAST-VQA-B's own video score (a baseline), from the project's seeded fragments."""

    name = "fastvqa"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        model: FastVQA | None = None,
    ):
        """`weights`: the checkpoint file, or a folder holding it, or None for the registry's copy."""
        super().__init__(weights=weights, device=device)
        self.seed = seed
        weights_file = weights is not None and Path(weights).is_file()
        self.source = FastVQASource(
            weights=Path(weights) if weights_file else WEIGHTS_NAME,
            weights_dir=None if weights is None or weights_file else weights,
            device=device,
            dtype=dtype,
            model=model,
        )

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        from rqvqa.video.sampling import sample_video

        sample = sample_video(path, fragments=True, seed=self.seed)
        clips = self.source.clip_scores(sample)
        raw = sum(clips) / len(clips)
        return Prediction(
            score=rescale_score(raw),
            extra={
                "raw": raw,
                "clip_raw": clips,
                "seed": self.seed,
                "weights": self.source.config()["weights"],
            },
        )

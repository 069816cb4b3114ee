"""The ``liqe`` predictor of the model zoo: LIQE's own image quality score as a video baseline.

Every key frame (the first frame of each second, native resolution; ``mode="full"`` keeps all of them, no
padding to 8) is scored with LIQE's formula (softmax over the 495 prompts, expectation of the quality
marginal, 1-5); the video score is the mean over key frames and ``per_second`` lists the frame scores.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rqvqa.errors import ConfigError
from rqvqa.nets.clip_liqe import (
    DISTORTIONS,
    PREPROCESSING,
    SCENES,
    LiqeCLIP,
    quality_marginals,
    quality_score,
)
from rqvqa.sources.liqe import WEIGHTS_NAME, LiqeSource
from rqvqa.zoo import Prediction, Predictor, register_predictor


@register_predictor
class LiqePredictor(Predictor):
    """LIQE (CLIP ViT-B/32 vs 495 quality/scene/distortion prompts), per key frame, averaged."""

    name = "liqe"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        variant: str = WEIGHTS_NAME,
        mode: str = "full",
        preprocessing: str = "rqvqa",
        model: LiqeCLIP | None = None,
    ):
        """`weights`: a checkpoint file, a folder holding it, a registry name ("liqe", "liqe-mix"), or None
        for the registry's `variant`; `mode`: the key-frame plan ("full" = every second, "official" = the
        first 8, padded); `preprocessing`: "rqvqa" (native resolution, stride 32, as RQ-VQA and pyiqa) or
        "benchmark" (LIQE's BIQA_benchmark.py: short side to 768 when both sides reach 768, stride 48 for a
        side >= 1024)."""
        super().__init__(weights=weights, device=device)
        if preprocessing not in PREPROCESSING:
            raise ConfigError(f"LIQE preprocessing must be one of {PREPROCESSING}, not {preprocessing!r}")
        self.mode = mode
        self.preprocessing = preprocessing
        name: str | Path = variant
        weights_dir = None
        if weights is not None:
            path = Path(weights)
            if path.is_file():
                name = path
            elif path.is_dir():
                weights_dir = path
            else:
                name = str(weights)
        self.source = LiqeSource(
            weights=name, weights_dir=weights_dir, device=device, dtype=dtype, model=model
        )

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        from rqvqa.video.sampling import sample_video

        sample = sample_video(path, keyframes=True, mode=self.mode)
        logits = self.source.logits(sample, self.preprocessing)
        per_frame = quality_score(logits)
        marginals = {key: value.mean(dim=0) for key, value in quality_marginals(logits).items()}
        return Prediction(
            score=float(per_frame.mean()),
            per_second=[float(s) for s in per_frame],
            extra={
                "weights": self.source.config()["weights"],
                "preprocessing": self.preprocessing,
                "quality_probabilities": [float(p) for p in marginals["quality"]],
                "scene": SCENES[int(marginals["scene"].argmax())],
                "distortion": DISTORTIONS[int(marginals["distortion"].argmax())],
                "keyframe_indices": list(sample.keyframe_indices),
            },
        )

"""The ``liqe`` model: LIQE's own image quality score as a video baseline.

Every key frame (the first frame of each second, native resolution; ``mode="full"`` keeps all of them, no
padding to 8) is scored with LIQE's formula (softmax over the 495 prompts, expectation of the quality
marginal,
1-5); the video score is the mean over key frames and ``per_second`` lists the frame scores. A batch of videos
goes through CLIP as one stream of patches (same scores as one video at a time, to float rounding).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from rqvqa.errors import ConfigError
from rqvqa.families.liqe.network import (
    DISTORTIONS,
    PREPROCESSING,
    SCENES,
    LiqeCLIP,
    quality_marginals,
    quality_score,
)
from rqvqa.families.liqe.source import WEIGHTS_NAME, LiqeSource
from rqvqa.precision import torch_dtype
from rqvqa.predictor import Predictor, Resources
from rqvqa.results import Prediction
from rqvqa.video.decode import Decoded, Product
from rqvqa.video.sampling import MODES, Sampling


class LiqePredictor(Predictor):
    """LIQE (CLIP ViT-B/32 vs 495 quality/scene/distortion prompts), per key frame, averaged."""

    name: ClassVar[str] = "liqe"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: torch.dtype | str | None = None,
        variant: str = WEIGHTS_NAME,
        mode: str = "full",
        preprocessing: str = "rqvqa",
        model: LiqeCLIP | None = None,
    ):
        """`weights`: a checkpoint file, a folder holding it, a registry name ("liqe", "liqe-mix"), or None
        for the registry's `variant`; `mode`: the key-frame plan ("full" = every second, "official" = the
        first 8, padded); `preprocessing`: "rqvqa" (native resolution, stride 32, as RQ-VQA and pyiqa) or
        "benchmark" (LIQE's BIQA_benchmark.py: short side to 768 when both sides reach 768, stride 48 for a
        side >= 1024); `model`: an already built network (tests)."""
        if preprocessing not in PREPROCESSING:
            raise ConfigError(f"LIQE preprocessing must be one of {PREPROCESSING}, not {preprocessing!r}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode, self.preprocessing = mode, preprocessing
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
            weights=name, weights_dir=weights_dir, device=device, dtype=torch_dtype(dtype), model=model
        )
        self.source.check()  # a missing checkpoint is one error now, not one per video
        self.card = self.make_card(
            weights=self.source.weights_id(),
            options={"mode": mode, "dtype": self.source.dtype_name(), "preprocessing": preprocessing},
        )

    def products(self) -> dict[str, Product]:
        return {"sample": Sampling(keyframes=True, mode=self.mode)}

    def setup(self) -> None:
        self.source.setup()

    def resources(self) -> Resources:
        return Resources(gpus=int(self.source.device.type == "cuda"), memory_mb=1200, networks=True)

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        samples = [d["sample"] for d in batch]
        frames = [frame for sample in samples for frame in sample.keyframes]
        logits = self.source.model.frame_logits(frames, self.source.batch_size, self.preprocessing).float()
        out = []
        for sample, chunk in zip(samples, logits.split([len(s.keyframes) for s in samples]), strict=True):
            out.append(self._prediction(sample.keyframe_indices, chunk))
        return out

    def _prediction(self, keyframe_indices: list[int], logits: torch.Tensor) -> Prediction:
        per_frame = quality_score(logits)
        marginals = {key: value.mean(dim=0) for key, value in quality_marginals(logits).items()}
        extra: dict[str, Any] = {
            "quality_probabilities": [float(p) for p in marginals["quality"]],
            "scene": SCENES[int(marginals["scene"].argmax())],
            "distortion": DISTORTIONS[int(marginals["distortion"].argmax())],
            "keyframe_indices": list(keyframe_indices),
            "second_frames": list(keyframe_indices),
        }
        per_second = [float(s) for s in per_frame]
        return Prediction(score=float(per_frame.mean()), per_second=per_second, extra=extra)

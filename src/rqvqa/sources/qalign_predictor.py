"""``qalign`` in the model zoo: Q-Align's own video score (the Table 3 baseline), not RQ-VQA.

A video is scored the way Q-Align's VQA evaluation does: one frame per second (the first frame of each second,
all of them), each padded to a square and encoded, all their visual tokens in the single image slot of
``USER: How would you rate the quality of this video?\n<|image|> ASSISTANT: The quality of the video is``;
softmax over the five level words at the last position, dotted with (5, 4, 3, 2, 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rqvqa.sources.qalign import QAlign, one_align_dir
from rqvqa.zoo import Prediction, Predictor, register_predictor


@register_predictor
class QAlignPredictor(Predictor):
    """Q-Align's own video score (Table 3 baseline), not RQ-VQA."""

    name = "qalign"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        load_8bit: bool = False,
        engine: QAlign | None = None,
    ):
        from rqvqa.sources.checkpoint import torch_dtype

        super().__init__(weights=weights, device=device or "cpu")
        self._device, self._dtype, self._load_8bit = device, torch_dtype(dtype), load_8bit
        self._engine = engine

    @property
    def engine(self) -> QAlign:
        if self._engine is None:
            folder = Path(self.weights) if self.weights is not None else one_align_dir()
            folder = folder.parent if folder.is_file() else folder  # a shard or config file names its folder
            self._engine = QAlign.from_pretrained(folder, self._device, self._dtype, self._load_8bit)
        return self._engine

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        from rqvqa.video.sampling import sample_video

        sample = sample_video(path, keyframes=True, mode="full")
        score, score_01 = self.engine.video_score(sample.keyframes or [])
        return Prediction(
            score=score,
            extra={"score_0_1": score_01, "frames": list(sample.keyframe_indices), "prompt": "video"},
        )

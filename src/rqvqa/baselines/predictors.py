"""`brisque` and `niqe` as model-zoo predictors: per-frame scores on the protocol frames, averaged.

Both are distortion measures (lower is better) and need no training on video data: BRISQUE applies the
LIVE-trained SVR to each sampled frame, NIQE compares each frame with the pristine model. The video score is
the mean of the per-frame scores (the UGC-VQA benchmark's per-video NIQE), per-second scores are the frames'.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from rqvqa.baselines.brisque import live_model
from rqvqa.baselines.video import VideoFeatures, video_features
from rqvqa.zoo import Prediction, Predictor, register_predictor


class FramePredictor(Predictor):
    """Shared plumbing of the frame models (lite, brisque, niqe): `max_frames` (fast mode) limits the number
    of decoded-and-scored frames; frames the model cannot measure are skipped (contract in `docs/video.md`):
    their seconds are None and the video score is the mean over the measured frames."""

    # light CPU work: collection engines run the whole prediction in their worker processes
    cpu_only = True

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        max_frames: int | None = None,
    ):
        super().__init__(weights=weights, device=device)
        self.max_frames = max_frames

    def _prediction(self, frame_scores: np.ndarray, vf: VideoFeatures) -> Prediction:
        return Prediction(
            score=float(np.mean(frame_scores)),
            per_second=[None if r is None else float(frame_scores[r]) for r in vf.second_rows()],
            extra={
                "frames": vf.frame_indices,
                "frame_scores": [float(s) for s in frame_scores],
                **unmeasured_extra(vf),
            },
        )


def unmeasured_extra(vf: VideoFeatures) -> dict:
    """`extra` entries naming the sampled frames that were skipped as unmeasurable (none: no entry)."""
    if not vf.unmeasurable:
        return {}
    return {
        "unmeasurable_frames": sorted(vf.unmeasurable),
        "unmeasurable_reason": Counter(vf.unmeasurable.values()).most_common(1)[0][0],
    }


@register_predictor
class BrisquePredictor(FramePredictor):
    name = "brisque"

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        vf = video_features(path, brisque=True, max_frames=self.max_frames)
        return self._prediction(live_model().predict(vf.brisque), vf)


@register_predictor
class NiqePredictor(FramePredictor):
    name = "niqe"

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        vf = video_features(path, brisque=False, niqe=True, max_frames=self.max_frames)
        return self._prediction(vf.niqe, vf)

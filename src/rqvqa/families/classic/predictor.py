"""`brisque` and `niqe`: per-frame scores on the protocol frames (one per second), averaged.

Both are distortion measures (lower is better) and need no training on video data: BRISQUE applies the
LIVE-trained SVR to each sampled frame, NIQE compares each frame with the pristine model. The video score is
the mean of the per-frame scores (the UGC-VQA benchmark's per-video NIQE), per-second scores are the frames'.
The frame features are computed in the decode stage (`ProtocolFrames`); the model stage is light arithmetic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from rqvqa.families.classic.brisque import FEATURE_NAMES, live_model
from rqvqa.families.classic.frames import ProtocolFrames, VideoFeatures
from rqvqa.predictor import Predictor
from rqvqa.results import Prediction
from rqvqa.video.decode import Decoded, Product


class FramePredictor(Predictor):
    """Shared plumbing of the frame models (brisque, niqe, lite-v1): `max_frames` (fast mode) limits the
    number of decoded-and-scored frames; frames the model cannot measure are skipped (`docs/video.md`):
    their seconds are None and the video score is the mean over the measured frames."""

    #: which per-frame features the decode stage computes
    brisque: ClassVar[bool] = True
    niqe: ClassVar[bool] = False

    def __init__(self, max_frames: int | None = None):
        """`max_frames`: fast mode, score at most this many of the one-per-second frames."""
        self.max_frames = max_frames
        self.frames = ProtocolFrames(brisque=self.brisque, niqe=self.niqe, max_frames=max_frames)
        self.card = self.make_card(weights="packaged", options={"max_frames": max_frames})

    def products(self) -> dict[str, Product]:
        return {"frames": self.frames}

    def _prediction(self, frame_scores: np.ndarray, vf: VideoFeatures) -> Prediction:
        return Prediction(
            score=float(np.mean(frame_scores)),
            per_second=[None if r is None else float(frame_scores[r]) for r in vf.second_rows()],
            extra={
                "frames": vf.frame_indices,
                "second_frames": vf.second_frames(),
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


class BrisquePredictor(FramePredictor):
    name: ClassVar[str] = "brisque"

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        features = [d["frames"] for d in batch]
        # one SVR evaluation over every frame of the batch, split back per video
        scores = live_model().predict(np.concatenate([vf.brisque for vf in features]))
        splits = np.cumsum([len(vf.brisque) for vf in features])[:-1]
        out = []
        for vf, frame_scores in zip(features, np.split(scores, splits), strict=True):
            prediction = self._prediction(frame_scores, vf)
            prediction.extra["features"] = dict(zip(FEATURE_NAMES, vf.brisque_video.tolist(), strict=True))
            out.append(prediction)
        return out


class NiqePredictor(FramePredictor):
    name: ClassVar[str] = "niqe"
    brisque = False
    niqe = True

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        return [self._prediction(d["frames"].niqe, d["frames"]) for d in batch]

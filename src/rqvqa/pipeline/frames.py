"""Scoring frames already in memory (`Predictor.predict_frames`), for pipelines that decode themselves."""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING

import numpy as np

from rqvqa.errors import InputError

if TYPE_CHECKING:
    from rqvqa.zoo import Prediction, Predictor


def score_frames(predictor: Predictor, frames: np.ndarray, fps: float) -> Prediction:
    """Write `frames` (uint8 RGB, (T, H, W, 3)) to a temporary video with the predictor's `frames_codec`
    (single-threaded, so the same frames always give the same bytes) and score it."""
    from rqvqa.video.synth import write_frames

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise InputError(f"frames must be uint8 RGB of shape (T, H, W, 3), not {frames.dtype} {frames.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, not {fps}")
    with tempfile.TemporaryDirectory(prefix="rqvqa-frames-") as folder:
        path = os.path.join(folder, "frames.mkv")
        write_frames(path, frames, fps=float(fps), **predictor.frames_codec)
        return predictor.predict(path)

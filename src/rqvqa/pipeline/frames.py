"""Scoring frames already in memory (`Predictor.predict_frames`), for pipelines that decode themselves."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from rqvqa.errors import InputError

if TYPE_CHECKING:
    from rqvqa.zoo import Prediction, Predictor


def write_frames(frames: np.ndarray, fps: float, path: str, codec: dict) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) to `path` (single-threaded: the same bytes on every machine)."""
    import av

    rate = Fraction(fps).limit_denominator(100000)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec["codec"], rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = codec["pix_fmt"]
        stream.thread_count = 1
        if codec.get("crf") is not None:
            stream.options = {"crf": str(codec["crf"])}
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def score_frames(predictor: Predictor, frames: np.ndarray, fps: float) -> Prediction:
    """Write `frames` to a temporary video with the predictor's `frames_codec` and score it."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise InputError(f"frames must be uint8 RGB of shape (T, H, W, 3), not {frames.dtype} {frames.shape}")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be a positive number, not {fps}")
    with tempfile.TemporaryDirectory(prefix="rqvqa-frames-") as folder:
        path = os.path.join(folder, "frames.mkv")
        write_frames(frames, float(fps), path, predictor.frames_codec)
        return predictor.predict(path)

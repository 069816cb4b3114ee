"""`stats`: a simple, weight-free per-key-frame source of colour, contrast and sharpness statistics.

It exists so the whole extract -> store -> train path runs (and is tested) without pre-trained weights,
and as a cheap extra cue beside the learned features. Computed on the key frames at short side 384 (the
base network's input), so it shares the decode with the base network's key-frame cache.

Per key frame, 12 values (pixel values scaled to [0, 1]):
  0-2  mean of R, G, B
  3-5  standard deviation of R, G, B
  6    RMS contrast (std of luma, BT.601 weights)
  7    variance of the 4-neighbour Laplacian of luma (focus / blur measure)
  8    mean gradient magnitude of luma (central differences)
  9    colourfulness (Hasler & Suesstrunk 2003: std and mean of the rg / yb opponent channels)
  10   mean HSV-style saturation ((max - min) / max)
  11   high-frequency noise estimate: median absolute Laplacian / 0.6745 (robust sigma)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rqvqa.errors import InputError
from rqvqa.source import FeatureSource, Granularity

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def frame_statistics(frame: np.ndarray) -> np.ndarray:
    """The 12 statistics of one RGB uint8 frame (H, W, 3), float32."""
    rgb = frame.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = rgb @ _LUMA
    lap = -4.0 * luma[1:-1, 1:-1] + luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
    gy = (luma[2:, 1:-1] - luma[:-2, 1:-1]) / 2.0
    gx = (luma[1:-1, 2:] - luma[1:-1, :-2]) / 2.0
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    top, bottom = rgb.max(axis=-1), rgb.min(axis=-1)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-6), 0.0)
    values = [
        *rgb.reshape(-1, 3).mean(axis=0),
        *rgb.reshape(-1, 3).std(axis=0),
        luma.std(),
        lap.var(),
        np.sqrt(gx**2 + gy**2).mean(),
        colourfulness,
        saturation.mean(),
        np.median(np.abs(lap)) / 0.6745,
    ]
    return np.asarray(values, dtype=np.float32)


class FrameStatistics(FeatureSource):
    name: ClassVar[str] = "stats"
    granularity: ClassVar[Granularity] = Granularity.FRAME
    needs: ClassVar[frozenset[str]] = frozenset({"keyframes_384"})
    version: ClassVar[int] = 1

    def extract(self, sample: VideoSample) -> np.ndarray:
        if not sample.keyframes_384:
            raise InputError("stats source needs the 384 key frames, the sample has none", sample.info.path)
        return np.stack([frame_statistics(f) for f in sample.keyframes_384])

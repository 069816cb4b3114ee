"""Generate test videos with PyAV, so examples and tests need no download.

The content is a moving, textured scene (gradients, a bouncing disc, fine stripes) so that blur, noise and
compression change measurable image statistics; `blur`, `noise` and `crf` grade the quality.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def render_frame(i: int, width: int, height: int, fps: float, seed: int = 0) -> np.ndarray:
    """Frame `i` of the synthetic scene, uint8 RGB (height, width, 3). Deterministic for (i, seed)."""
    t = i / max(fps, 1e-6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 0.7
    r = 127 + 100 * np.sin(2 * np.pi * (xx / max(width, 1) + 0.15 * t + phase))
    g = 127 + 100 * np.sin(2 * np.pi * (yy / max(height, 1) - 0.1 * t + 0.3 * phase))
    stripes = 40 * np.sign(np.sin(2 * np.pi * (xx + yy) / 6.0 + 3 * t))
    b = 127 + stripes
    cx = width * (0.5 + 0.35 * np.sin(2 * np.pi * 0.25 * t + phase))
    cy = height * (0.5 + 0.35 * np.cos(2 * np.pi * 0.2 * t + phase))
    rad = 0.18 * min(width, height)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < rad**2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = (240.0, 230.0 - 20 * (seed % 5), 40.0 + 30 * (seed % 4))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _degrade(frame: np.ndarray, blur: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    out = frame.astype(np.float32)
    if blur > 0:
        from scipy.ndimage import gaussian_filter

        out = gaussian_filter(out, sigma=(blur, blur, 0))
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_video(
    path: str | Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: float | Fraction = 30,
    n_frames: int = 60,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int | None = 23,
    blur: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Path:
    """Write a synthetic clip and return its path. `fps` may be fractional (e.g. Fraction(30000, 1001))."""
    path = Path(path)
    rate = Fraction(fps).limit_denominator(100000)
    rng = np.random.default_rng(seed)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        options = {}
        if crf is not None:
            options["crf"] = str(crf)
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
        stream.options = options
        for i in range(n_frames):
            frame = _degrade(render_frame(i, width, height, float(rate), seed), blur, noise, rng)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

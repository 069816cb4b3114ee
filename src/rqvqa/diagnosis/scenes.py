"""Natural-looking synthetic clips for calibrating and testing the diagnosis, generated deterministically.

`rqvqa.video.synth`'s scene (sinusoids and 6-pixel stripes) is all texture and no sky; artifacts show
differently on real footage, which has smooth skies (banding), soft and sharp edges (blur), fine texture
that is not noise, dark and bright areas. A scene here has, drawn from its seed: a sky with a vertical
gradient and a sun glow, a landscape of 1/f ("pink") texture, a few objects with sharp edges (flat, textured
or graded), a camera pan, a moving object, sensor grain, and a brightness (key) from dark to bright. The same
(seed, size, frame count) always gives the same pixels.

`make_scene_clip(path, seed, ...)` writes it losslessly (FFV1 RGB, .mkv) for
`rqvqa.video.degrade.grade_video`.
The calibration uses seeds `CALIBRATION_SEEDS`; the tests use others (`TEST_SEEDS`), never these.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: seeds of the calibration clips (scripts/calibrate_diagnosis.py) and of the test clips: disjoint
CALIBRATION_SEEDS = (1, 2, 3, 4, 5, 6)
TEST_SEEDS = (101, 102)


@dataclass(frozen=True)
class SceneParams:
    horizon: float  # share of the height that is sky
    sky_top: tuple[float, float, float]
    sky_bottom: tuple[float, float, float]
    sun: tuple[float, float]  # position, as shares of width and height
    sun_strength: float
    ground: tuple[float, float, float]
    texture_beta: float  # spectral slope of the ground texture (2 = natural images)
    texture_contrast: float
    objects: int
    pan: float  # pixels per frame
    grain: float  # sensor noise sigma in grey levels
    gain: float  # overall brightness multiplier (the key)


def scene_params(seed: int) -> SceneParams:
    rng = np.random.default_rng(seed)
    top = rng.uniform(20, 140, 3)
    return SceneParams(
        horizon=float(rng.uniform(0.3, 0.6)),
        sky_top=tuple(float(x) for x in top),
        sky_bottom=tuple(float(x) for x in np.clip(top + rng.uniform(40, 110, 3), 0, 255)),
        sun=(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.05, 0.3))),
        sun_strength=float(rng.uniform(0.0, 1.0)),
        ground=tuple(float(x) for x in rng.uniform(40, 160, 3)),
        texture_beta=float(rng.uniform(1.6, 2.4)),
        texture_contrast=float(rng.uniform(25, 60)),
        objects=int(rng.integers(2, 6)),
        # whole pixels per frame: a sub-pixel pan drawn at integer offsets would repeat pictures (judder)
        pan=float(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1),
        grain=float(rng.uniform(0.3, 1.5)),
        gain=float(rng.uniform(0.7, 1.25)),
    )


def _pink(rng: np.random.Generator, height: int, width: int, beta: float) -> np.ndarray:
    """Zero-mean, unit-std 1/f^(beta/2)-amplitude noise (power spectrum ~ 1/f^beta)."""
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(white) / f ** (beta / 2)
    spectrum[0, 0] = 0.0
    out = np.fft.irfft2(spectrum, s=(height, width))
    return out / (out.std() + 1e-12)


def _canvas(seed: int, width: int, height: int, n_frames: int, p: SceneParams) -> np.ndarray:
    """The static panorama the camera pans over: float32 RGB (height, width + pan room, 3)."""
    rng = np.random.default_rng(seed + 10_000)
    room = int(abs(p.pan) * n_frames) + 2
    cw = width + room
    yy, xx = np.mgrid[0:height, 0:cw].astype(np.float32)
    horizon = p.horizon * height
    t = np.clip(yy / max(horizon, 1.0), 0.0, 1.0)[..., None]
    sky = (1 - t) * np.array(p.sky_top, np.float32) + t * np.array(p.sky_bottom, np.float32)
    sx, sy = p.sun[0] * cw, p.sun[1] * height
    glow = np.exp(-(((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (0.25 * height) ** 2)))[..., None]
    sky = sky + p.sun_strength * 120.0 * glow * np.array([1.0, 0.85, 0.6], np.float32)
    # the landscape: a wavy skyline, 1/f texture, coloured
    skyline = horizon + 0.08 * height * _pink(rng, 1, cw, 2.0)[0]
    texture = _pink(rng, height, cw, p.texture_beta).astype(np.float32)
    ground = np.array(p.ground, np.float32) + p.texture_contrast * texture[..., None] * np.array(
        [1.0, 0.9, 0.8], np.float32
    )
    # darker towards the bottom: depth cue, and some shadows
    ground = ground * (0.6 + 0.4 * (1 - (yy - horizon).clip(0) / max(height - horizon, 1)))[..., None]
    img = np.where((yy >= skyline[None, :])[..., None], ground, sky)
    for _ in range(p.objects):
        w = int(rng.uniform(0.06, 0.25) * height)
        h = int(rng.uniform(0.06, 0.3) * height)
        x0 = int(rng.uniform(0, cw - w))
        y0 = int(rng.uniform(horizon * 0.5, height - h))
        colour = rng.uniform(10, 245, 3).astype(np.float32)
        style = rng.integers(0, 3)
        patch = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
        if style == 1:  # textured object
            patch = patch + 30.0 * _pink(rng, h, w, 1.2)[..., None].astype(np.float32)
        elif style == 2:  # a smooth shading across it
            patch = patch * np.linspace(0.6, 1.2, w, dtype=np.float32)[None, :, None]
        if rng.random() < 0.5:  # an ellipse rather than a rectangle
            ey, ex = np.mgrid[0:h, 0:w]
            inside = ((ey - h / 2) / (h / 2)) ** 2 + ((ex - w / 2) / (w / 2)) ** 2 <= 1.0
            img[y0 : y0 + h, x0 : x0 + w][inside] = patch[inside]
        else:
            img[y0 : y0 + h, x0 : x0 + w] = patch
    return img * p.gain


class SceneClip:
    """Frames of one scene: `frames()` yields uint8 RGB (height, width, 3)."""

    def __init__(self, seed: int, width: int = 960, height: int = 540, n_frames: int = 120, fps: float = 30):
        self.seed, self.width, self.height, self.n_frames, self.fps = seed, width, height, n_frames, fps
        self.params = scene_params(seed)
        self._canvas = _canvas(seed, width, height, n_frames, self.params)

    def frames(self) -> Iterator[np.ndarray]:
        p = self.params
        rng = np.random.default_rng(self.seed + 20_000)
        room = self._canvas.shape[1] - self.width
        size = max(8, int(0.12 * self.height))
        colour = np.array([230.0, 60.0, 50.0], np.float32) * p.gain
        for i in range(self.n_frames):
            offset = int(round(i * abs(p.pan)))
            x = offset if p.pan > 0 else room - offset
            x = int(np.clip(x, 0, room))
            frame = self._canvas[:, x : x + self.width].copy()
            # a ball crossing the picture, bouncing
            t = i / max(self.fps, 1e-6)
            bx = (0.1 + 0.8 * (0.5 + 0.5 * np.sin(0.9 * t + self.seed))) * self.width
            by = (0.35 + 0.4 * abs(np.sin(2.1 * t + self.seed))) * self.height
            y0, x0 = int(by - size / 2), int(bx - size / 2)
            frame[max(y0, 0) : y0 + size, max(x0, 0) : x0 + size] = colour
            frame += rng.normal(0.0, p.grain, frame.shape[:2])[..., None].astype(np.float32)
            yield np.clip(np.round(frame), 0, 255).astype(np.uint8)


def make_scene_clip(
    path: str | Path, seed: int, *, width: int = 960, height: int = 540, n_frames: int = 120, fps: float = 30
) -> Path:
    """Write scene `seed` losslessly (FFV1 RGB; give a .mkv path) and return the path."""
    from rqvqa.video.synth import write_frames

    clip = SceneClip(seed, width, height, n_frames, fps)
    return write_frames(path, clip.frames(), fps=fps)

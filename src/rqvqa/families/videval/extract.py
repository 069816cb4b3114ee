"""Video-level VIDEVAL features: frame sampling, pooling and the once-per-second TLVQM part, for the full
(`calc_VIDEVAL_feats.m`) and light (`calc_VIDEVAL_feats_light.m`) variants.

The release decodes to raw YUV 4:2:0 (`ffmpeg -pix_fmt yuv420p -vsync 0`), upsamples chroma with bicubic
`imresize(., 2)` and uses the rounded frame rate. With `N` decoded frames and 0-based frame numbers:

- frame features on frames i = 1, 1 + step, ... <= N - 3, each with its neighbours i - 1 and i + 1;
  full: step 2; light: step floor(fps / frames_per_block), frames first downscaled by max_reso / min(w, h)
  when that is below 1;
- pooling windows over the sequence of frame-feature rows: full: rows j..j + floor(fps/2) for j = 1, 1 +
  floor(fps/2), ... <= n - floor(fps/2), nan-aware mean / std; light: rows j..min(n, j + frames_per_block) for
  j = 1, 1 + frames_per_block, ... <= n - frames_per_block (the release's plain mean / std; here
  nan-aware, which only differs when a frame is unmeasurable);
- TLVQM high-complexity features on frames floor(fps/2) - 1 + k fps (one per second);
- the 60 features: mean over windows of the window means (35), of the window standard deviations (19), mean of
  the per-second TLVQM features (6).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from rqvqa.errors import UnmeasurableError, no_measurable_content
from rqvqa.families.videval import frame, ops, tlvqm
from rqvqa.video.decode import Collector, FileSource, Pool, Product, VideoSource, decode
from rqvqa.video.reader import VideoInfo

# 1-based frame-feature columns pooled by std and by mean (the release's std_pool_idx / avg_pool_idx)
STD_POOL = [1, 5, 6, 8, 11, 12, 17, 21, 22, 23, 24, 26, 28, 29, 31, 33, 45, 49, 50]
AVG_POOL = [2, 3, 4, 7, 9, 10, 12, *range(13, 21), 25, 27, 29, 30, 32, *range(34, 49)]

_GROUPS = (
    ("brisque", 4),
    ("gmlog", 8),
    ("higrade", 8),
    ("friquee_luma", 11),
    ("friquee_chroma", 11),
    ("friquee_lms", 1),
    ("tlvqm_lcf", 7),
)
FRAME_FEATURE_NAMES = [f"{g}_{k + 1}" for g, n in _GROUPS for k in range(n)]
HCF_NAMES = [
    "tlvqm_hcf_sob_mean",
    "tlvqm_hcf_sob_std",
    "tlvqm_hcf_chroma",
    "tlvqm_hcf_sharp",
    "tlvqm_hcf_sharp2",
    "tlvqm_hcf_blur",
]
#: the 60 features in the release's column order
FEATURE_NAMES = (
    [f"mean_{FRAME_FEATURE_NAMES[i - 1]}" for i in AVG_POOL]
    + [f"std_{FRAME_FEATURE_NAMES[i - 1]}" for i in STD_POOL]
    + HCF_NAMES
)


@dataclass(frozen=True)
class Variant:
    name: str
    light: bool
    max_reso: int | None = None
    frames_per_block: int | None = None

    def frame_step(self, fps: int) -> int:
        return max(fps // self.frames_per_block, 1) if self.light else 2

    def window(self, fps: int) -> int:
        return self.frames_per_block if self.light else fps // 2

    def scale(self, width: int, height: int) -> float | None:
        if not self.light:
            return None
        ratio = self.max_reso / min(width, height)
        return ratio if ratio < 1 else None


VARIANTS = {
    "videval": Variant("videval", light=False),
    "videval-light": Variant("videval-light", light=True, max_reso=720, frames_per_block=6),
    # the release's fastest published setting (VIDEVAL_light480_3fps), the features of the `lite` model
    "videval-light480": Variant("videval-light480", light=True, max_reso=480, frames_per_block=3),
}


@dataclass
class VidevalFeatures:
    """Pooled features of one video and the per-frame / per-window detail behind them."""

    info: VideoInfo
    variant: str
    #: the 60 features (NaN where no frame was measurable for a column)
    features: np.ndarray
    #: 0-based frame numbers of the frame-feature rows, and their (n, 50) features (NaN rows: unmeasurable)
    frame_indices: list[int]
    frame_features: np.ndarray
    #: (n_windows, 54) per-window mean/std part and (n_seconds, 6) per-second TLVQM part
    window_features: np.ndarray
    second_features: np.ndarray
    unmeasurable: list[str] = field(default_factory=list)
    #: 0-based frame number of each second's TLVQM frame (the frame that stands for the second)
    second_frames: list[int] = field(default_factory=list)

    def per_second_rows(self) -> np.ndarray:
        """One 60-feature row per second: that second's window (the last window for trailing seconds) and
        that second's TLVQM frame."""
        n = self.second_features.shape[0]
        if self.window_features.shape[0] == 0:
            return np.empty((0, 60))
        w = [min(k, self.window_features.shape[0] - 1) for k in range(n)]
        return np.concatenate([self.window_features[w], self.second_features], axis=1)


def _yuv(frame_av, scale: float | None = None, luma_only: bool = False) -> np.ndarray:
    """(H, W, 3) float64 YUV 0-255 of a decoded frame, chroma upsampled as the release's YUVread, then
    scaled by `scale` (the light variants' `imresize`); (H, W, 1) with `luma_only` (a frame only read as a
    centre's neighbour: TLVQM reads its luma). Each plane is resized on its own before the planes are
    interleaved; the chroma's upsampling and downscaling are one composed resize."""
    if frame_av.format.name != "yuv420p":
        frame_av = frame_av.reformat(format="yuv420p")
    y, u, v = (
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame_av.planes
    )
    h, w = y.shape
    if luma_only:
        return (ops.imresize(y, scale) if scale else y.astype(np.float64))[..., None]
    if scale:
        planes = [ops.imresize(y, scale), *(ops.upsample_then_resize(c, (h, w), scale) for c in (u, v))]
    else:
        planes = [y.astype(np.float64), *(ops.imresize(c, 2.0)[:h, :w] for c in (u, v))]
    return cv2.merge(planes)  # the planes interleaved, as np.stack(planes, axis=-1) but 4x faster


def _frame_row(this: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, str | None]:
    try:
        spatial = frame.spatial_features(this)
        lcf = tlvqm.lcf7(this[..., 0] / 255, prev[..., 0] / 255, nxt[..., 0] / 255)
    except UnmeasurableError as exc:
        return np.full(frame.N_FRAME_FEATURES, np.nan), exc.reason
    return np.asarray([*spatial, *lcf], dtype=np.float64), None


def _hcf_row(yuv: np.ndarray) -> tuple[np.ndarray, str | None]:
    try:
        frame.check_measurable(yuv[..., 0])
        return np.asarray(tlvqm.hcf6(yuv / 255), dtype=np.float64), None
    except UnmeasurableError as exc:
        return np.full(6, np.nan), exc.reason


def _nanpool(block: np.ndarray, fn) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(block, axis=0)


def _nanstd(block: np.ndarray, axis: int) -> np.ndarray:
    # MATLAB nanstd: N-1 normalisation over the non-NaN entries; one entry -> 0
    count = np.sum(~np.isnan(block), axis=axis)
    out = np.nanstd(block, axis=axis, ddof=1) if block.shape[axis] > 1 else np.zeros(block.shape[1])
    return np.where(count == 1, 0.0, out)


def pool(frame_feats: np.ndarray, hcf: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(the 60 features, the per-window 54 features) from frame rows and per-second TLVQM rows."""
    n = frame_feats.shape[0]
    avg = np.asarray(AVG_POOL) - 1
    std = np.asarray(STD_POOL) - 1
    rows = []
    for j in range(0, n - window, window):
        block = frame_feats[j : min(n, j + window + 1)]
        rows.append(np.concatenate([_nanpool(block[:, avg], np.nanmean), _nanstd(block[:, std], axis=0)]))
    windows = np.asarray(rows).reshape(-1, len(avg) + len(std))
    if windows.shape[0] == 0 and n > 0:  # shorter than one window: one window over every row
        windows = np.concatenate(
            [_nanpool(frame_feats[:, avg], np.nanmean), _nanstd(frame_feats[:, std], 0)]
        )[None]
    video = np.concatenate([_nanpool(windows, np.nanmean), _nanpool(hcf, np.nanmean)]) if hcf.size else None
    if video is None:
        video = np.concatenate([_nanpool(windows, np.nanmean), np.full(6, np.nan)])
    return video, windows


@dataclass(frozen=True)
class VidevalFrames(Product):
    """The VIDEVAL features of `variant` (`VARIANTS`), computed frame by frame in the decode stage (a
    `VidevalFeatures`): the frame features of the sampled frames (each with its neighbours) and the TLVQM
    features of one frame per second run in the decode stage's thread pool while decoding goes on; only the
    few frames still needed are held."""

    variant: str = "videval"
    #: 10-60x the CPU of decoding the frames (docs/videval.md, "Speed")
    heavy = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown VIDEVAL variant {self.variant!r}; one of {', '.join(VARIANTS)}")

    def collector(self, source: VideoSource) -> Collector:
        return _VidevalCollector(VARIANTS[self.variant], source.info)


class _VidevalCollector(Collector):
    def __init__(self, var: Variant, info: VideoInfo):
        self.var, self.info = var, info
        self.fps = max(int(round(float(info.frame_rate))), 1)
        self.step = var.frame_step(self.fps)
        self.scale = var.scale(info.width, info.height)
        self.hcf_first = max(self.fps // 2 - 1, 0)
        self.frame_jobs: dict[int, Future] = {}
        self.hcf_jobs: dict[int, Future] = {}
        #: the frames still needed: the last centre and the last previous frame
        self.kept: dict[int, np.ndarray] = {}

    def last(self) -> None:
        return None  # every frame: the release reads the whole video

    def _is_hcf(self, index: int) -> bool:
        """The once-per-second TLVQM frames (independent of the probed count)."""
        return index >= self.hcf_first and (index - self.hcf_first) % self.fps == 0

    def _prev_of(self, centre: int) -> int:
        # the release carries its previous "next" frame over: frame i - step + 1, except for the first centre
        return centre - 1 if centre == 1 else centre - self.step + 1

    def wants(self, index: int) -> bool:
        is_centre = index >= 1 and (index - 1) % self.step == 0
        is_next = index >= 2 and (index - 2) % self.step == 0  # also the previous frame of the next centre
        return index == 0 or is_centre or is_next or self._is_hcf(index)

    def feed(self, index: int, frame_av: av.VideoFrame, pool: Pool) -> None:
        is_centre = index >= 1 and (index - 1) % self.step == 0
        is_next = index >= 2 and (index - 2) % self.step == 0
        cur = _yuv(frame_av, self.scale, luma_only=not (is_centre or self._is_hcf(index)))
        if self._is_hcf(index):
            self.hcf_jobs[index] = pool.submit(_hcf_row, cur)
        kept = self.kept
        if is_next and (index - 1) in kept and self._prev_of(index - 1) in kept:
            c = index - 1
            self.frame_jobs[c] = pool.submit(_frame_row, kept[c], kept[self._prev_of(c)], cur)
        if index == 0 or is_next:
            self.kept = {index: cur}
        if is_centre:
            self.kept[index] = cur

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> VidevalFeatures:
        path = self.info.path
        last = decoded - 3  # the release's frame_end (0-based frame numbers up to N - 3)
        centres = sorted(i for i in self.frame_jobs if i <= last)
        seconds = sorted(i for i in self.hcf_jobs if i <= last)
        frame_results = [self.frame_jobs[i].result() for i in centres]
        hcf_results = [self.hcf_jobs[i].result() for i in seconds]
        reasons = [r for _, r in frame_results + hcf_results if r]
        frame_feats = np.asarray([r for r, _ in frame_results]).reshape(-1, frame.N_FRAME_FEATURES)
        hcf = np.asarray([r for r, _ in hcf_results]).reshape(-1, 6)
        if frame_feats.shape[0] == 0 or np.all(np.isnan(frame_feats)):
            frame_reasons = [r for _, r in frame_results if r]
            if frame_reasons:
                raise no_measurable_content(frame_reasons, path)
            raise UnmeasurableError(f"too short: {decoded} frames, VIDEVAL needs at least 4", path)
        video, windows = pool(frame_feats, hcf, self.var.window(self.fps))
        return VidevalFeatures(
            info=self.info,
            variant=self.var.name,
            features=video,
            frame_indices=centres,
            frame_features=frame_feats,
            window_features=windows,
            second_features=hcf,
            unmeasurable=sorted(set(reasons)),
            second_frames=seconds,
        )


def videval_features(
    path: str | os.PathLike[str], variant: str = "videval", info: VideoInfo | None = None
) -> VidevalFeatures:
    """Decode `path` once and compute the 60 VIDEVAL (or VIDEVAL_light) features.

    Raises VideoError for an unreadable video and UnmeasurableError when no sampled frame is measurable.
    """
    return decode(FileSource(path, info), {"videval": VidevalFrames(variant)})["videval"]

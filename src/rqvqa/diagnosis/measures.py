"""Per-frame artifact measures: pure functions of one uint8 luma plane (H, W), the Y plane as stored.

Each returns a finite float, or None when the frame cannot be measured (too small, or no content the measure
needs: a flat frame has no edges whose sharpness could be judged). None of them raises on a frame of any size
from 1x1 to 8K, nor returns NaN or inf. Scales and references: `docs/diagnosis.md`.

- `banding_index`: contrast-aware multiscale banding (after CAMBI, Tandon et al. 2021), 0 = none.
- `blockiness`: periodic 8-pixel grid in the gradient energy (after Wang, Bovik & Evans 2000), in percent.
- `blur_effect`: Crete et al. 2007 (the measure of `skimage.measure.blur_effect`), 0 sharp .. 1 blurred.
- `noise_sigma`: Donoho's wavelet MAD estimate (`skimage.restoration.estimate_sigma`), in grey levels.
- `exposure`: under- and over-exposure levels (dark / bright key, crushed shadows, clipped highlights).
- `thumbnail`, `frame_difference`: the cheap per-frame picture change that stutter is measured from.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

#: frames larger than this are measured at a reduced size (an integer area downscale, so a 4K frame is
#: measured at 1920x1080 and an 8K one at 1920x1080 too) by the banding index; blur has its own, smaller
#: size (`BLUR_WORK_PIXELS`), noise and blocking read native pixels (grain and the block grid are there)
MAX_WORK_PIXELS = 1920 * 1088


def _as_luma(luma: np.ndarray) -> np.ndarray:
    arr = np.asarray(luma)
    if arr.ndim != 2:
        raise ValueError(f"luma must be a 2-D (H, W) array, not shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"luma must be uint8, not {arr.dtype}")
    return arr


def reduction_factor(height: int, width: int, max_pixels: int = MAX_WORK_PIXELS) -> int:
    """The integer factor a frame of this size is area-downscaled by for the measures (1 up to 1080p)."""
    factor = 1
    while (height // factor) * (width // factor) > max_pixels:
        factor += 1
    return factor


def working_luma(luma: np.ndarray, max_pixels: int = MAX_WORK_PIXELS) -> np.ndarray:
    """`luma` area-downscaled by `reduction_factor` (itself when no reduction is needed)."""
    luma = _as_luma(luma)
    h, w = luma.shape
    factor = reduction_factor(h, w, max_pixels)
    if factor == 1:
        return luma
    return cv2.resize(luma, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def normalised_luma(luma: np.ndarray, full_range: bool = False) -> np.ndarray:
    """float32 luma in [0, 1]: limited range (16-235) stretched, full range (0-255) scaled; footroom and
    headroom of limited-range video clip to 0 and 1."""
    y = _as_luma(luma).astype(np.float32)
    if full_range:
        return y * np.float32(1.0 / 255.0)
    return np.clip((y - 16.0) * np.float32(1.0 / 219.0), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------- banding

#: contrast steps tested, in 10-bit code values (4 per 8-bit grey level): 1 to 32 grey levels. CAMBI's
#: default stops at 4 (one 8-bit level, the steps a codec leaves); coarser steps are the banding of a
#: bit-depth reduction or posterisation (luma quantised to 32, 16 or 8 levels is 8, 16, 32 grey levels a step)
BANDING_STEPS = (4, 8, 16, 32, 64, 128)
#: CAMBI's visibility threshold: a step is visible when it changes the display luminance by more than
#: 1.9 % (a Weber fraction, `tvi_threshold` in libvmaf), on a BT.1886 display
TVI_THRESHOLD = 0.019
#: BT.1886 display: peak white and black level in cd/m2 (a typical SDR living-room display)
DISPLAY_WHITE, DISPLAY_BLACK = 100.0, 0.05
#: number of scales: windows of 1/48 to 1/3 of the picture's width + height, doubling (CAMBI: 5 scales from a
#: 63-pixel window at 4K, about one degree of visual angle)
BANDING_SCALES = 5
#: share of the frame's pixels averaged in the spatial pooling (libvmaf's `topk` default)
BANDING_TOPK = 0.6
#: a pixel is in a flat region when at least this share of its 5x5 neighbourhood has zero derivative
FLAT_SHARE = 0.6


def _bt1886(code10: np.ndarray, full_range: bool) -> np.ndarray:
    """Display luminance (cd/m2) of 10-bit luma codes on a BT.1886 display."""
    v = code10 / 1020.0 if full_range else (code10 / 4.0 - 16.0) / 219.0
    v = np.clip(v, 0.0, 1.0)
    gamma = 2.4
    lw, lb = DISPLAY_WHITE ** (1 / gamma), DISPLAY_BLACK ** (1 / gamma)
    a = (lw - lb) ** gamma
    b = lb / (lw - lb)
    return a * np.maximum(v + b, 0.0) ** gamma


@lru_cache(maxsize=2)
def _visible_steps(full_range: bool) -> np.ndarray:
    """(len(BANDING_STEPS), 1024) bool: step Δ from level k (either direction) is visible at k."""
    codes = np.arange(1024, dtype=np.float64)
    lum = _bt1886(codes, full_range)
    out = np.zeros((len(BANDING_STEPS), 1024), dtype=bool)
    for i, step in enumerate(BANDING_STEPS):
        up = _bt1886(codes + step, full_range) - lum
        down = lum - _bt1886(codes - step, full_range)
        # the smaller of the two luminance changes must pass the Weber threshold at the band's own level
        out[i] = np.minimum(up, np.where(codes - step >= 0, down, up)) >= TVI_THRESHOLD * np.maximum(
            lum, 1e-6
        )
    return out


def _flat_mask(v: np.ndarray) -> np.ndarray:
    """CAMBI's spatial mask: pixels of flat regions (most of the neighbourhood has zero derivative), where
    a false contour is visible; texture, noise and dither are left out."""
    # a pixel's derivative is nonzero when it differs from its right or lower neighbour; the horizontal
    # comparison runs over the flat plane (numpy's fast path), the last column's wrap to the next row undone
    changed = np.zeros(v.shape, dtype=bool)
    flat = v.reshape(-1)
    np.not_equal(flat[1:], flat[:-1], out=changed.reshape(-1)[:-1])
    changed[:, -1] = False
    changed[:-1] |= v[1:] != v[:-1]
    zero = np.logical_not(changed).astype(np.float32)
    share = cv2.blur(zero, (5, 5), borderType=cv2.BORDER_REFLECT)
    return share >= FLAT_SHARE


def _topk_mean(values: np.ndarray, weights: np.ndarray, total: float, topk: float) -> float:
    """Mean of the largest `topk` share of `total` pixels, where `values[i]` is held by `weights[i]` pixels
    and every other pixel holds 0."""
    budget = topk * total
    if budget <= 0 or values.size == 0:
        return 0.0
    order = np.argsort(values)[::-1]
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    take = np.minimum(w, np.maximum(budget - (cum - w), 0.0))
    return float(np.sum(v * take) / budget)


@lru_cache(maxsize=4)
def _tile_bins(h2: int, w2: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """For the half-size plane of a frame size: each pixel's first histogram bin (its tile's number times
    1024, tiles of `tile` pixels in row-major order), and the pixels per tile (edge tiles are smaller: the
    denominator of p). Read-only: shared by every frame of that size."""
    ty, tx = -(-h2 // tile), -(-w2 // tile)
    tiles = (np.arange(h2) // tile)[:, None] * tx + (np.arange(w2) // tile)[None, :]
    area = np.bincount(tiles.ravel(), minlength=ty * tx).reshape(ty, tx).astype(np.float64)
    bins = tiles * 1024
    bins.flags.writeable = area.flags.writeable = False
    return bins, area


def banding_index(luma: np.ndarray, full_range: bool = False) -> float | None:
    """Contrast-aware multiscale banding index of one frame (after CAMBI, Tandon et al., PCS 2021).

    The luma is 2x2-summed into 10-bit codes (CAMBI's anti-dithering low-pass, here also a 2x decimation);
    flat-region pixels (`_flat_mask`) are histogrammed per window; a pixel at level k scores, for each step
    Δ visible at k (`TVI_THRESHOLD`), c = p(k) * max(p(k+Δ) / (p(k) + p(k+Δ)), p(k-Δ) / (p(k) + p(k-Δ)))
    with p the window's share of each level, weighted by log2 of the step in grey levels + 1 (a larger
    step is a more visible contour) and maximised over steps; the score is the mean of the top 60 % of
    pixels, summed over 5 window scales, times 10. 0: no banding. Windows are non-overlapping tiles (a
    cheaper stand-in for CAMBI's sliding window). None below 16x16 pixels."""
    luma = working_luma(luma)
    h, w = luma.shape
    h2, w2 = h // 2, w // 2
    if h2 < 8 or w2 < 8:
        return None
    # four strided views added: several times cheaper than a reshaped sum over two axes
    q = luma[: 2 * h2, : 2 * w2].astype(np.uint16)
    v = q[0::2, 0::2] + q[1::2, 0::2] + q[0::2, 1::2] + q[1::2, 1::2]
    mask = _flat_mask(v)
    total = float(h2 * w2)
    # base window: 1/48 of the half-size width + height, i.e. about twice CAMBI's base window (63 px at 4K,
    # 1/95 of 3840 + 2160): a contour falls into fewer non-overlapping tiles than sliding windows, so the
    # tiles start larger; at least 4 pixels
    tile = max(4, round((h2 + w2) / 48))
    bins, area = _tile_bins(h2, w2, tile)
    ty, tx = area.shape
    hist = np.bincount((bins + v)[mask], minlength=ty * tx * 1024).astype(np.int32).reshape(ty, tx, 1024)
    visible = _visible_steps(bool(full_range))
    weights = np.log2(np.asarray(BANDING_STEPS, dtype=np.float64) / 4.0) + 1.0
    score = 0.0
    for _ in range(BANDING_SCALES):
        score += _scale_score(hist, area, visible, weights, total)
        if hist.shape[0] == 1 and hist.shape[1] == 1:
            break
        hist, area = _pool2(hist), _pool2(area)
    return float(10.0 * score)


def _pool2(a: np.ndarray) -> np.ndarray:
    """Sum 2x2 neighbouring tiles (the next, twice larger window)."""
    ty, tx = a.shape[:2]
    if ty % 2 or tx % 2:
        a = np.pad(a, [(0, ty % 2), (0, tx % 2)] + [(0, 0)] * (a.ndim - 2))
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]


def _scale_score(
    hist: np.ndarray, area: np.ndarray, visible: np.ndarray, weights: np.ndarray, total: float
) -> float:
    flat = hist.reshape(-1)
    where = np.flatnonzero(flat)
    if where.size == 0:
        return 0.0
    level = where % 1024
    tiles = where // 1024
    count = flat[where].astype(np.float64)
    tile_area = area.reshape(-1)[tiles]
    p_k = count / tile_area
    best = np.zeros(where.size)
    for i, step in enumerate(BANDING_STEPS):
        ok = visible[i, level]
        if not ok.any():
            continue
        ratio = np.zeros(where.size)
        for sign in (1, -1):
            other = level + sign * step
            inside = (other >= 0) & (other < 1024) & ok
            p_o = np.zeros(where.size)
            p_o[inside] = flat[where[inside] + sign * step] / tile_area[inside]
            ratio = np.maximum(ratio, p_o / (p_k + p_o))
        best = np.maximum(best, weights[i] * p_k * ratio)
    return _topk_mean(best, count, total, BANDING_TOPK)


# ---------------------------------------------------------------------------------------------- blocking

#: block size of the grid looked for (8: JPEG/MPEG-2 DCT and H.264's 8x8 transform; its 4x4 transform and
#: 16x16 macroblocks show up as the 2nd and 4th harmonics of this period folded back)
BLOCK = 8
#: rows (columns) sampled for the horizontal (vertical) profile: every 2nd keeps the cost low at any size
_PROFILE_STRIDE = 2


def _grid_strength(profile: np.ndarray) -> float | None:
    """Periodic share of a mean absolute-difference profile at period BLOCK: the RMS of the non-DC
    harmonics of the profile folded modulo BLOCK, over its mean, in percent."""
    n = profile.size - profile.size % BLOCK
    if n < 2 * BLOCK:
        return None
    folded = profile[:n].reshape(-1, BLOCK).mean(axis=0)
    mean = float(folded.mean())
    if not mean > 1e-6:
        return None
    spectrum = np.fft.rfft(folded - mean)
    # Parseval: the periodic part's RMS over the 8 phases
    power = (np.abs(spectrum[1:]) ** 2).copy()
    power[:-1] *= 2.0  # rfft keeps one half of the conjugate pairs (the Nyquist term is its own pair)
    rms = math.sqrt(float(power.sum())) / BLOCK
    return 100.0 * rms / mean


def blockiness(luma: np.ndarray) -> float | None:
    """Block-grid strength of one frame, in percent (after Wang, Bovik & Evans, ICIP 2000).

    The absolute differences between horizontally (vertically) adjacent pixels, averaged down the columns
    (along the rows), form a profile; a block codec's grid makes it periodic with the block size. The
    periodic part is measured in the frequency domain as in Wang et al. (energy at the harmonics of 1/8),
    over the profile folded modulo 8, relative to the mean: 0 for content without a grid (a few percent
    from chance), growing with the steps at block edges. Measured at the native size (the grid is there);
    the mean of both directions. None for frames under 16 pixels or without any gradient."""
    luma = _as_luma(luma)
    h, w = luma.shape
    out = []
    if w >= 2 * BLOCK + 1:
        rows = luma[::_PROFILE_STRIDE].astype(np.int16)
        out.append(_grid_strength(np.abs(np.diff(rows, axis=1)).mean(axis=0)))
    if h >= 2 * BLOCK + 1:
        cols = luma[:, ::_PROFILE_STRIDE].astype(np.int16)
        out.append(_grid_strength(np.abs(np.diff(cols, axis=0)).mean(axis=1)))
    measured = [x for x in out if x is not None]
    return float(np.mean(measured)) if measured else None


# -------------------------------------------------------------------------------------------------- blur

#: Crete et al.'s re-blur: an 11-tap box filter along each axis (`skimage.measure.blur_effect`'s h_size)
BLUR_TAPS = 11


def blur_effect(luma: np.ndarray) -> float | None:
    """Crete et al.'s blur effect (SPIE 2007) of one frame: 0 sharp .. 1 blurred.

    The same quantity as `skimage.measure.blur_effect(luma)` (its Sobel derivative along each axis, an
    11-tap re-blur, borders reflected, the maximum over the two axes; the tests check the equality), computed
    with OpenCV in float32, about 6x cheaper: the diagnosis runs it on every analysed frame. Frames larger
    than 1080p are measured at their `working_luma` size. None when the frame has no gradient at all (flat) or
    is under 16 pixels on a side."""
    y = working_luma(luma)
    h, w = y.shape
    if h < 16 or w < 16:
        return None
    img = y.astype(np.float32) * np.float32(1.0 / 255.0)
    inner = (slice(2, h - 1), slice(2, w - 1))
    result = []
    for sharp, excess in _crete_maps(img):
        m1 = float(np.sum(sharp[inner], dtype=np.float64))
        m2 = float(np.sum(excess[inner], dtype=np.float64))
        if m1 > 1e-6:
            result.append(abs(m1 - m2) / m1)
    return float(max(result)) if result else None


# ------------------------------------------------------------------------------------------------- noise

#: rows are read in bands of this height, every other band, on frames over 960x540 (the estimate is a
#: percentile over blocks: half of the frame estimates the same at half the cost)
_NOISE_BAND = 64
#: side of the blocks of diagonal wavelet coefficients (16 coefficients = 32 pixels) each estimated alone
NOISE_BLOCK = 16
#: the reported sigma is this percentile of the blocks' estimates: texture raises the blocks it covers, the
#: quiet blocks keep the noise alone
NOISE_PERCENTILE = 25


def noise_sigma(luma: np.ndarray) -> float | None:
    """Standard deviation of the frame's Gaussian noise in grey levels (0-255).

    Donoho & Johnstone's robust estimate, as `skimage.restoration.estimate_sigma` computes it (the median
    absolute finest diagonal db2 wavelet coefficient over 0.6745; PyWavelets), but per 32x32-pixel block, read
    at the blocks' 25th percentile: over the whole frame, fine texture counts as noise (a clean test scene
    at CRF 18 reads 3.6 grey levels whole-frame, 0.22 per block; `docs/diagnosis.md`), while the quieter
    quarter of the blocks shows the noise alone. Blocks whose coefficients are all exactly zero (perfectly
    flat) are left out, as skimage leaves out zero coefficients. Measured at the native size (downscaling
    averages noise away); over 960x540 on every other 64-row band. 0.0 for a frame without detail; None
    under 8 pixels on a side."""
    y = _as_luma(luma)
    h, w = y.shape
    if h < 8 or w < 8:
        return None
    if h * w > 960 * 540 and h >= 4 * _NOISE_BAND:
        bands = [y[r : r + _NOISE_BAND] for r in range(0, h - _NOISE_BAND + 1, 2 * _NOISE_BAND)]
        y = np.concatenate(bands, axis=0)
    img = y.astype(np.float32)
    if not np.any(img != img.flat[0]):
        return 0.0
    diagonal = np.abs(_diagonal_detail(img))
    ch, cw = diagonal.shape
    block = min(NOISE_BLOCK, ch, cw)
    bh, bw = ch // block, cw // block
    blocks = diagonal[: bh * block, : bw * block].reshape(bh, block, bw, block).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(bh * bw, block * block)
    measured = blocks.max(axis=1) > 0
    if not measured.any():
        return 0.0
    sigmas = np.median(blocks[measured], axis=1) / _MAD_TO_SIGMA
    # a low percentile of noisy per-block estimates is biased low: the sample median of n |N(0, s)| values
    # has a standard deviation of about 1.1664 s / sqrt(n) (in units of the estimate), and the 25th percentile
    # of normal values lies 0.6745 of them below the middle; divide that out (pure noise: 0.95 -> 1.00)
    bias = 1.0 - 0.6745 * 1.1664 / math.sqrt(blocks.shape[1])
    return float(np.percentile(sigmas, NOISE_PERCENTILE) / bias)


def _diagonal_detail(img: np.ndarray) -> np.ndarray:
    """The finest diagonal db2 band of `pywt.dwt2(img, "db2")` (its `cD`), computed as `dwt2` does (the detail
    along axis 0, then along axis 1 of that) without the three bands the noise estimate does not read."""
    import pywt

    return pywt.dwt(pywt.dwt(img, "db2", axis=0)[1], "db2", axis=1)[1]


#: the median absolute deviation of a standard normal (its 75th percentile)
_MAD_TO_SIGMA = 0.6744897501960817


# ---------------------------------------------------------------------------------------------- exposure

#: normalised luma at or below which a pixel is a crushed shadow, at or above which a clipped highlight
#: (about 4 grey levels from black and white in limited range)
CRUSH_LEVEL, CLIP_LEVEL = 0.02, 0.98
#: the key (mean normalised luma) of a well exposed picture lies between these; beyond them, the distance
#: over the room left adds to the level
DARK_KEY, BRIGHT_KEY = 0.3, 0.5


def _saturate(raw: float, most: float) -> float:
    """`raw` (0 .. `most`) mapped to 0 .. 1 by 1 - exp(-raw), rescaled so that `most` gives 1: strictly rising
    all the way (a hard cap at 1 would give two strong degradations the same level)."""
    return min(1.0, (1.0 - math.exp(-raw)) / (1.0 - math.exp(-most)))


def exposure(luma: np.ndarray, full_range: bool = False) -> dict[str, float] | None:
    """Under- and over-exposure of one frame, each 0 (fine) .. 1 (all black / all white): the sum of three
    symptoms each, mapped to 0 .. 1 by 1 - exp(-sum), rescaled so that an all-black (all-white) frame gives 1.

    - `under` = crushed shadows (share of pixels at normalised luma <= CRUSH_LEVEL) + a dark key (how far
      the mean luma falls below DARK_KEY, over DARK_KEY) + dim highlights (half of how far the 98th
      percentile stays from white: nothing in the picture is bright);
    - `over` = clipped highlights (share >= CLIP_LEVEL) + a bright key (above BRIGHT_KEY, over the room
      left) + lifted blacks (the 2nd percentile: nothing in the picture is dark).

    Also returns `key`, `crushed`, `clipped`, `p2`, `p98`. Read on a 1/4-size subsample (a few thousand
    pixels give stable statistics). `full_range`: the luma uses 0-255 (yuvj, RGB sources), not 16-235. None
    for an empty frame."""
    y = _as_luma(luma)
    if y.size == 0:
        return None
    step = 4 if min(y.shape) >= 64 else 1
    yn = normalised_luma(np.ascontiguousarray(y[::step, ::step]), full_range)
    key = float(yn.mean())
    p2, p98 = (float(v) for v in np.percentile(yn, [2, 98]))
    crushed = float(np.mean(yn <= CRUSH_LEVEL))
    clipped = float(np.mean(yn >= CLIP_LEVEL))
    under = _saturate(crushed + max(0.0, DARK_KEY - key) / DARK_KEY + 0.5 * (1.0 - p98), 2.5)
    over = _saturate(clipped + max(0.0, key - BRIGHT_KEY) / (1.0 - BRIGHT_KEY) + p2, 3.0)
    return {
        "under": under,
        "over": over,
        "key": key,
        "crushed": crushed,
        "clipped": clipped,
        "p2": p2,
        "p98": p98,
    }


# --------------------------------------------------------------------------------------------- stutter

#: thumbnail stride: 1/8 of each side, a plain subsample (no filtering: it only has to tell a repeated
#: picture from a new one, and costs microseconds)
THUMB_STRIDE = 8


def thumbnail(luma: np.ndarray) -> np.ndarray:
    """A 1/8-per-side subsample of the luma, int16 (the per-frame work for frames not analysed fully)."""
    y = _as_luma(luma)
    return y[::THUMB_STRIDE, ::THUMB_STRIDE].astype(np.int16)


def frame_difference(previous: np.ndarray, current: np.ndarray) -> float | None:
    """Mean absolute difference of two thumbnails in grey levels (None when their sizes differ)."""
    if previous.shape != current.shape or previous.size == 0:
        return None
    return float(np.abs(current - previous).mean())


# ------------------------------------------------------------------------------------- blur, as reported

#: tile side (pixels of the working image) of the local blur effect
BLUR_TILE = 32
#: blur is judged on frames of at most 1280x720 (a 1080p frame at half size): the same blur in pixels is
#: half as visible on a frame twice as large, and the cost drops 4x (the bench's 1080p clip)
BLUR_WORK_PIXELS = 1280 * 720
#: the reported blur is Crete's measure over the tiles that hold this share of the picture with the most
#: gradient energy (its most detailed tenth)
BLUR_EDGE_SHARE = 0.1


def _crete_maps(img: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per axis: |Sobel| of the image and max(0, that - |Sobel| of its 11-tap re-blur)."""
    smooth = np.array([[0.25, 0.5, 0.25]], dtype=np.float32)
    edge = np.array([[1.0, 0.0, -1.0]], dtype=np.float32)
    out = []
    for axis in (0, 1):
        kx, ky = (smooth, edge.T) if axis == 0 else (edge, smooth.T)
        ksize = (1, BLUR_TAPS) if axis == 0 else (BLUR_TAPS, 1)  # cv2 sizes are (width, height)
        reblurred = cv2.blur(img, ksize, borderType=cv2.BORDER_REFLECT)
        sharp = np.abs(cv2.sepFilter2D(img, -1, kx, ky, borderType=cv2.BORDER_REFLECT))
        blurred = np.abs(cv2.sepFilter2D(reblurred, -1, kx, ky, borderType=cv2.BORDER_REFLECT))
        out.append((sharp, np.maximum(0.0, sharp - blurred)))
    return out


def _crete_maps_fixed(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """`_crete_maps` in 16-bit fixed point (the luma times 8: the re-blur keeps 1/8 of a grey level), with
    OpenCV's integer Sobel: about 3x cheaper than float32 on a 1080p frame. Sobel of 8x luma stays under
    4 * 2 * 2040 = 16320, inside int16."""
    img = y.astype(np.int16) << 3
    out = []
    for axis in (0, 1):
        dx, dy = (0, 1) if axis == 0 else (1, 0)
        ksize = (1, BLUR_TAPS) if axis == 0 else (BLUR_TAPS, 1)  # cv2 sizes are (width, height)
        reblurred = cv2.blur(img, ksize, borderType=cv2.BORDER_REFLECT)
        sharp = np.abs(cv2.Sobel(img, cv2.CV_16S, dx, dy, ksize=3, borderType=cv2.BORDER_REFLECT))
        blurred = np.abs(cv2.Sobel(reblurred, cv2.CV_16S, dx, dy, ksize=3, borderType=cv2.BORDER_REFLECT))
        out.append((sharp, np.maximum(sharp - blurred, 0)))
    return out


def blur_level(luma: np.ndarray) -> float | None:
    """The blur the diagnosis reports: Crete et al.'s blur effect (as `blur_effect`, both axes pooled) over
    the most detailed tenth of the picture: the 32x32 tiles whose gradient energy is in the top 10 %
    (`BLUR_EDGE_SHARE`). 0 sharp .. 1 blurred. Frames over 1280x720 are judged at a reduced size
    (`BLUR_WORK_PIXELS`).

    Why not the whole frame: flat and soft areas read as blurred whatever the picture's sharpness, so a dark
    or smooth scene already scores high (the shipped KoNViD clip: 0.47 clean, 0.76 at Gaussian sigma 4,
    while the calibration scenes read 0.27-0.30 clean); the most detailed parts show whether the picture
    itself was blurred (0.25 clean, 0.81 at sigma 4 on that clip; 0.25-0.27 clean on the scenes;
    `docs/diagnosis.md`). None for a flat frame or one under 16 pixels on a side."""
    y = working_luma(luma, BLUR_WORK_PIXELS)
    h, w = y.shape
    if h < 16 or w < 16:
        return None
    tile = min(BLUR_TILE, h, w)
    th, tw = h // tile, w // tile
    m1 = np.zeros((th, tw), np.float64)
    m2 = np.zeros((th, tw), np.float64)
    for sharp, excess in _crete_maps_fixed(y):
        m1 += sharp[: th * tile, : tw * tile].reshape(th, tile, tw, tile).sum(axis=(1, 3), dtype=np.int64)
        m2 += excess[: th * tile, : tw * tile].reshape(th, tile, tw, tile).sum(axis=(1, 3), dtype=np.int64)
    m1, m2 = m1.ravel(), m2.ravel()
    # a tile with any visible gradient: 1/1000 of full scale per pixel (Sobel of 8x luma: 4 * 8 * 255)
    edges = m1 > 1e-3 * 8160 * tile * tile
    if not edges.any():
        return None
    m1, m2 = m1[edges], m2[edges]
    detailed = m1 >= np.quantile(m1, 1.0 - BLUR_EDGE_SHARE)
    return float(np.clip(1.0 - float(m2[detailed].sum()) / float(m1[detailed].sum()), 0.0, 1.0))

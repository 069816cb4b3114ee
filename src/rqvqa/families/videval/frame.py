"""Per-frame VIDEVAL features (the 50 frame-level columns of `calc_VIDEVAL_feats.m`) and the 6 TLVQM
high-complexity features of the once-per-second frames.

Frames are (H, W, 3) float64 YUV on the 0-255 scale, chroma upsampled to full size (the release's `YUVread`).
Each group follows its function in the release; the numbers in comments are the original feature indices the
release keeps.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.special import gamma as gamma_fn

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic.nss import aggd_fit, ggd_fit, shifted_product
from rqvqa.families.videval import ops
from rqvqa.families.videval.ops import imresize

#: smallest frame (width, height) the features are defined on (TLVQM's block search and sharpness blocks)
MIN_SIZE = (64, 64)
N_FRAME_FEATURES = 50
_GAUSS7 = ops.fspecial_gaussian(7, 7 / 6)


def check_measurable(y: np.ndarray) -> None:
    h, w = y.shape
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        raise UnmeasurableError(f"frames {w}x{h} are below VIDEVAL's minimum {MIN_SIZE[0]}x{MIN_SIZE[1]}")
    if float(y.max()) == float(y.min()):
        raise UnmeasurableError("the frame is flat")


def local_stats(image: np.ndarray, separable: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(local mean, local standard deviation) under the 7x7 Gaussian (sigma 7/6), MATLAB filter2 borders:
    the release's `computeSigmaMap` is the second, `divisiveNormalization` is `(image - mu) / (sigma + 1)`.

    `separable`: two 1-D passes (`ops.gaussian_filter2`), for maps whose features are moments; the default
    single 2-D pass keeps MATLAB's rounding for the MSCN maps that AGGD fits read."""
    smooth = partial(ops.gaussian_filter2, 7, 7 / 6) if separable else partial(ops.filter2, _GAUSS7)
    mu = smooth(image)
    sq = image * image
    var = smooth(sq)
    np.subtract(var, np.multiply(mu, mu, out=sq), out=var)  # in place: the same values, fewer temporaries
    return mu, np.sqrt(np.abs(var, out=var), out=var)


def normalized(
    image: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None = None, separable: bool = False
) -> np.ndarray:
    mu, sigma = stats if stats is not None else local_stats(image, separable)
    out = image - mu
    return np.divide(out, sigma + 1, out=out)


class _Luma:
    """The luma maps several groups share, computed once per frame."""

    def __init__(self, y: np.ndarray):
        self.y = y
        self.stats = local_stats(y)
        self.dn = normalized(y, self.stats)
        self.half = imresize(y, 0.5)
        self.half_stats = local_stats(self.half)
        self.half_dn = normalized(self.half, self.half_stats)


def _pair(struct: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """`struct * np.roll(struct, shift)`, flat, without the rolled copy (the same products)."""
    return shifted_product(struct, shift, np.empty_like(struct)).ravel()


def _aggd_mean(alpha: float, left: float, right: float) -> float:
    const = np.sqrt(gamma_fn(1 / alpha)) / np.sqrt(gamma_fn(3 / alpha))
    return float((right - left) * (gamma_fn(2 / alpha) / gamma_fn(1 / alpha)) * const)


def _gaussian_para_esti(x: np.ndarray) -> tuple[float, float]:
    """(sigma, shape) of a GGD with its mean removed (the release's `gaussian_para_esti`)."""
    d = x.ravel() - x.mean()
    shape, sigma = ggd_fit(d)
    return sigma, shape


def brisque4(luma: _Luma) -> list[float]:
    s = luma.dn
    feats = [aggd_fit(_pair(s, (0, 1)))[1] ** 2, aggd_fit(_pair(s, (1, 0)))[1] ** 2]
    s2 = luma.half_dn
    feats.append(aggd_fit(_pair(s2, (0, 1)))[1] ** 2)
    feats.append(aggd_fit(_pair(s2, (1, 1)))[0])
    return feats


def gmlog8(y: np.ndarray) -> list[float]:
    # the release's derivative windows w(2:6, 2:6) - w(2:6, 3:7) (and the transpose), each over the sum of
    # its absolute values, of the 7x7 Gaussian w (sigma 0.5): separable, smooth x difference; the features
    # are histogram counts of the gradient, which the two passes' last bits do not move
    sigma = 0.5
    g = ops.gaussian_taps(7, sigma)
    smooth, diff = g[1:-1] / g[1:-1].sum(), (g[1:-1] - g[2:]) / np.abs(g[1:-1] - g[2:]).sum()
    grad = np.sqrt(ops.separable_filter2(smooth, diff, y) ** 2 + ops.separable_filter2(diff, smooth, y) ** 2)
    log_k = ops.fspecial_log(5, sigma)
    log_k = log_k / np.abs(log_k).sum()
    log_im = np.abs(ops.filter2(log_k, y))
    grad = np.abs(grad / 2.5)
    nmap = np.sqrt(ops.gaussian_filter2(7, 2 * sigma, (grad**2 + log_im**2) / 2)) + 0.2
    h = 3  # ceil(3 * sigmaN): keep rows/cols h..end-h+1 (1-based)
    grad = np.abs(grad / nmap)[h - 1 : -h + 1 or None, h - 1 : -h + 1 or None]
    log_im = np.abs(log_im / nmap)[h - 1 : -h + 1 or None, h - 1 : -h + 1 or None]
    # hist3 with centres 1..10: the outer bins are open, so the quantised values clip to [1, 10]
    gq = np.clip(np.ceil(grad / 0.2), 1, 10).astype(np.int64).ravel() - 1
    lq = np.clip(np.ceil(log_im / 0.2), 1, 10).astype(np.int64).ravel() - 1
    n1 = np.bincount(gq * 10 + lq, minlength=100).reshape(10, 10).astype(np.float64)
    n1 /= n1.sum()
    ng, nl = n1.sum(axis=1), n1.sum(axis=0)
    cp_gl = (n1 / (nl[None, :] + 1e-4)).sum(axis=1)
    cp_gl /= cp_gl.sum()
    cp_lg = (n1 / (ng[:, None] + 1e-4)).sum(axis=0)
    cp_lg /= cp_lg.sum()
    out = np.concatenate([ng, nl, cp_gl, cp_lg])
    return [float(out[i - 1]) for i in (2, 4, 8, 18, 20, 23, 34, 40)]


_SOBEL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_CROSS = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def higrade8(y: np.ndarray) -> list[float]:
    # imgradient(I) ('sobel'): imfilter with replicate borders
    gmag = np.sqrt(ops.imfilter(y, _SOBEL.T, "replicate") ** 2 + ops.imfilter(y, _SOBEL, "replicate") ** 2)
    s = normalized(gmag, separable=True)
    feats = [_gaussian_para_esti(s)[0]]
    ls = np.log(np.abs(s) + 0.1)
    diff = (
        ls + np.roll(ls, (1, 1), axis=(0, 1)) - np.roll(ls, (0, 1), axis=(0, 1)) - np.roll(ls, (1, 0), (0, 1))
    )
    feats += list(_gaussian_para_esti(diff))
    feats.append(_gaussian_para_esti(ops.filter2(_CROSS, ls))[1])
    s2 = normalized(imresize(gmag, 0.5), separable=True)
    feats.append(_gaussian_para_esti(s2)[0])
    feats.append(_gaussian_para_esti(s2 - np.roll(s2, (1, 1), axis=(0, 1)))[1])
    feats.append(_gaussian_para_esti(s2 - np.roll(s2, (-1, 1), axis=(0, 1)))[1])
    feats.append(_gaussian_para_esti(ops.filter2(_CROSS, s2))[0])
    return feats


def _dog_sigma(smap: np.ndarray) -> np.ndarray:
    """The sigma map filtered by the difference of the 7x7 Gaussians of sigma 7/6 and 7/4 (as two separable
    Gaussians: its features are moments and GGD fits)."""
    out = ops.gaussian_filter2(7, 7 / 6, smap)
    return np.subtract(out, ops.gaussian_filter2(7, 7 * 1.5 / 6, smap), out=out)


def friquee_luma11(luma: _Luma) -> list[float]:
    s = luma.dn
    pair_h = _pair(s, (0, 1))
    feats = [ops.skewness(pair_h), _aggd_mean(*aggd_fit(_pair(s, (1, 0))))]
    feats.append(float(luma.stats[1].mean()))
    # the release's scale-2 pair uses the scale-1 normalised map (it is not recomputed)
    feats.append(aggd_fit(pair_h)[0])
    feats.append(float(luma.half_stats[1].mean()))
    feats.append(ops.skewness(luma.half_dn))
    dog = _dog_sigma(luma.stats[1])
    dog_stats = local_stats(dog, separable=True)
    dn_dog = normalized(dog, dog_stats)
    feats.append(ggd_fit(dn_dog.ravel())[1])
    feats.append(ops.kurtosis(dn_dog))
    feats.append(ops.kurtosis(normalized(dog_stats[1], separable=True)))
    feats += list(ggd_fit(ops.laplacian_band(luma.y).ravel()))
    return feats


def friquee_chroma11(rgb8: np.ndarray) -> list[float]:
    _, a, b = ops.srgb2lab_uint8(rgb8)
    chroma = np.sqrt(a**2 + b**2)
    stats = local_stats(chroma)
    s = normalized(chroma, stats)
    feats = [
        aggd_fit(_pair(s, (0, 1)))[2] ** 2,
        aggd_fit(_pair(s, (1, 0)))[0],
        aggd_fit(_pair(s, (1, 1)))[1] ** 2,
        ops.kurtosis(_pair(s, (-1, 1))),
        ops.skewness(stats[1]),
        ops.kurtosis(_pair(s, (1, 0))),  # scale 2 of the release, again on the scale-1 map
    ]
    smap_half = local_stats(imresize(chroma, 0.5), separable=True)[1]
    feats += [ops.kurtosis(smap_half), float(smap_half.mean())]
    dn_dog = normalized(_dog_sigma(stats[1]), separable=True)
    feats += [ggd_fit(dn_dog.ravel())[1], ops.skewness(dn_dog)]
    feats.append(ops.skewness(ops.laplacian_band(chroma)))
    return feats


def friquee_lms1(rgb8: np.ndarray) -> list[float]:
    s_channel = imresize(ops.cat02_s(rgb8), 0.5)
    return [ggd_fit(normalized(local_stats(s_channel, separable=True)[1], separable=True).ravel())[1]]


def spatial_features(yuv: np.ndarray) -> list[float]:
    """The 43 spatial frame features (BRISQUE, GM-LOG, HIGRADE, FRIQUEE luma / chroma / LMS)."""
    y = np.ascontiguousarray(yuv[..., 0])  # once: every filter would copy the strided view
    check_measurable(y)
    rounded = np.round(yuv)
    rgb8 = ops.ycbcr2rgb(np.clip(rounded, 0, 255, out=rounded), uint8=True)
    luma = _Luma(y)
    return [
        *brisque4(luma),
        *gmlog8(y),
        *higrade8(y),
        *friquee_luma11(luma),
        *friquee_chroma11(rgb8),
        *friquee_lms1(rgb8),
    ]

"""MATLAB primitives the VIDEVAL feature code depends on, with MATLAB's numbers (borders, colour matrices,
rounding of uint8 conversions). Only what `calc_VIDEVAL_feats*.m` uses.

- `fspecial_gaussian`, `fspecial_log`: `fspecial('gaussian'|'log', n, sigma)`;
- `filter2` (`filter2(h, x, 'same')`, zero borders, one 2-D correlation: a separable two-pass version rounds
  flat regions differently, which the AGGD fits of MSCN maps notice), `imfilter` (zero or replicate borders);
  `gaussian_filter2` / `separable_filter2`: the two-pass versions, for the maps whose features are moments;
- `ycbcr2rgb` (BT.601 studio swing, uint8 or double), `rgb2lab` (D65, double), `srgb2lab_uint8`
  (`applycform(uint8, makecform('srgb2lab'))`: ICC D50 PCS, encoded as uint8), `cat02_s`
  (the S plane of `colorspace('RGB->CAT02 LMS')`);
- `laplacian_band`: the finest band of matlabPyrTools' `buildLpyr(im, n)` (binom5 filters, reflect1 edges);
- `skewness`, `kurtosis` (MATLAB's biased defaults, kurtosis not in excess).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy import sparse

from rqvqa.families.classic.matlab import _resize_weights, gaussian_taps


@lru_cache(maxsize=16)
def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    h = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


@lru_cache(maxsize=4)
def fspecial_log(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    h = np.exp(-r2 / (2 * sigma**2))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    h = h / h.sum()
    h1 = h * (r2 - 2 * sigma**2) / sigma**4
    return h1 - h1.sum() / h1.size


_BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


def imfilter(image: np.ndarray, kernel: np.ndarray, border: str = "zero") -> np.ndarray:
    """`imfilter(image, kernel)` (zero borders) or `imfilter(..., 'replicate')`; correlation, 'same' size.

    OpenCV's direct (non-DFT, kernels below 11x11) float64 correlation: the same sums in the same order as
    `scipy.ndimage.correlate` (bit-identical on the shared video), 2.5x faster and without holding the GIL.
    (Filtering stacked planes in one multi-channel pass gives the same sums but saves nothing measurable.)
    """
    if max(kernel.shape) >= 11:
        raise ValueError("kernels of 11 taps or more would switch OpenCV to its DFT path")
    return cv2.filter2D(
        np.ascontiguousarray(image, dtype=np.float64), cv2.CV_64F, kernel, borderType=_BORDERS[border]
    )


def filter2(kernel: np.ndarray, image: np.ndarray) -> np.ndarray:
    """`filter2(kernel, image, 'same')`: one 2-D correlation, zero outside the image."""
    return imfilter(image, kernel, "zero")


def gaussian_filter2(size: int, sigma: float, image: np.ndarray) -> np.ndarray:
    """`filter2(fspecial('gaussian', size, sigma), image, 'same')` as two 1-D passes (about 3.5x faster).

    The same linear map, rounded differently: a few ulps of the window's values. Only for maps whose features
    are moments or fits of moments (GGD, skewness, kurtosis, means), which those ulps move by about 1e-12;
    not for the MSCN maps whose AGGD fits count strictly negative and positive values (`filter2` there):
    in flat regions their sign is the rounding residue itself."""
    g = gaussian_taps(size, sigma)
    return separable_filter2(g, g, image)


def separable_filter2(down: np.ndarray, across: np.ndarray, image: np.ndarray) -> np.ndarray:
    """`filter2(np.outer(down, across), image, 'same')` (zero borders) as two 1-D passes; the rounding
    differs from one 2-D pass by a few ulps (see `gaussian_filter2` for where that is allowed)."""
    return cv2.sepFilter2D(
        np.ascontiguousarray(image, dtype=np.float64),
        cv2.CV_64F,
        across,
        down,
        borderType=cv2.BORDER_CONSTANT,
    )


@lru_cache(maxsize=32)
def _resize_matrix(in_len: int, scale: float) -> sparse.csr_matrix:
    # the weights of `rqvqa.families.classic.matlab.imresize` as a sparse (out, in) matrix: same sums, fewer
    # passes
    w, src = _resize_weights(in_len, scale)
    rows = np.repeat(np.arange(w.shape[0]), w.shape[1])
    return sparse.csr_matrix((w.ravel(), (rows, src.ravel())), shape=(w.shape[0], in_len))


@lru_cache(maxsize=32)
def _upsample_then_resize_matrix(in_len: int, out_len: int, scale: float) -> sparse.csr_matrix:
    return (_resize_matrix(out_len, scale) @ _resize_matrix(in_len, 2.0)[:out_len]).tocsr()


def upsample_then_resize(image: np.ndarray, shape: tuple[int, int], scale: float) -> np.ndarray:
    """`imresize(imresize(image, 2)[:h, :w], scale)` with `shape` = (h, w) (the release's chroma upsampling
    followed by the light variants' downscaling) as one pair of sparse products whose matrices are the
    products of the two steps' matrices: the same linear map, equal up to rounding (about 1e-13 on 0-255
    values), at a fraction of the cost of the full-size intermediate."""
    image = np.asarray(image, dtype=np.float64)
    return _two_passes(
        image,
        _upsample_then_resize_matrix(image.shape[0], shape[0], scale),
        _upsample_then_resize_matrix(image.shape[1], shape[1], scale),
    )


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB `imresize(image, scale)` (bicubic, antialiasing when shrinking) of a 2-D or (H, W, C) double
    image, each channel alike: `rqvqa.families.classic.matlab.imresize` as two sparse products (rows
    first)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        return np.stack([imresize(image[..., c], scale) for c in range(image.shape[2])], axis=-1)
    return _two_passes(image, _resize_matrix(image.shape[0], scale), _resize_matrix(image.shape[1], scale))


def _two_passes(image: np.ndarray, down: sparse.csr_matrix, across: sparse.csr_matrix) -> np.ndarray:
    """`down @ image @ across.T`, rows first. The intermediate and the result are transposed by OpenCV's
    blocked transpose (2-3x faster than numpy's copy of a transposed view; the same numbers) and the result
    is in C order: the filters and products that read it would each copy a transposed view."""
    rows = down @ image
    return cv2.transpose(across @ cv2.transpose(rows))


# BT.601 studio swing: ycbcr = offset + T @ rgb, rgb in [0, 1]
_T601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_T601_INV = np.linalg.inv(_T601)
_OFFSET601 = np.array([16.0, 128.0, 128.0])
# rgb = m @ ycbcr - m @ offset on the 0-255 scale, as (3, 4) for cv2.transform
_YCBCR_TO_RGB_AFFINE = np.hstack([255.0 * _T601_INV, -(255.0 * _T601_INV) @ _OFFSET601[:, None]])


def ycbcr2rgb(ycbcr: np.ndarray, uint8: bool) -> np.ndarray:
    """MATLAB `ycbcr2rgb`: `uint8=True` takes integer 0-255 values and returns the rounded, saturated 0-255
    RGB as uint8; otherwise takes 0-1 doubles and returns 0-1 doubles (not clipped, as `imlincomb`).

    The uint8 case as one OpenCV affine transform: of all 256^3 integer inputs, none has an exact RGB value
    nearer than 5.1e-8 to a rounding tie (`tests/test_videval.py` checks every one), far more than any
    double-precision order of the three products can move it, so every way of summing rounds alike."""
    if uint8:
        rgb = cv2.transform(np.ascontiguousarray(ycbcr, dtype=np.float64), _YCBCR_TO_RGB_AFFINE)
        return np.clip(np.round(rgb, out=rgb), 0, 255, out=rgb).astype(np.uint8)
    return _per_channel(np.subtract, ycbcr, _OFFSET601 / 255.0) @ (255.0 * _T601_INV).T


def _per_channel(op, image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`op(image, values)` for an (..., 3) image and 3 values, one channel at a time: the same numbers, 2-3x
    faster than numpy's broadcast loop over an innermost axis of 3."""
    out = np.empty(image.shape)
    for c in range(image.shape[-1]):
        op(image[..., c], values[c], out=out[..., c])
    return out


def _srgb_to_linear(rgb: np.ndarray, knee: float = 0.04045) -> np.ndarray:
    # the power branch everywhere (np.maximum keeps it real for out-of-gamut inputs), then the linear branch
    # where it applies: the values of np.where(rgb <= knee, ...) in fewer whole-image passes
    out = ((np.maximum(rgb, knee) + 0.055) / 1.055) ** 2.4
    low = rgb <= knee
    out[low] = rgb[low] / 12.92
    return out


def _xyz_to_lab(xyz: list[np.ndarray], white: np.ndarray) -> list[np.ndarray]:
    """The L, a, b planes."""
    f = []
    for plane, w in zip(xyz, white, strict=True):
        t = plane / w
        fc = np.cbrt(t)
        low = t <= (6 / 29) ** 3
        fc[low] = t[low] / (3 * (6 / 29) ** 2) + 4 / 29
        f.append(fc)
    return [116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])]


# sRGB (D65) -> XYZ, as MATLAB's rgb2lab
_SRGB_TO_XYZ_D65 = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_D65 = np.array([0.95047, 1.0, 1.08883])
# sRGB -> XYZ of the ICC profile connection space (D50, Bradford-adapted), as makecform('srgb2lab')
_SRGB_TO_XYZ_D50 = np.array(
    [[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169], [0.0139322, 0.0971045, 0.7141733]]
)
_D50 = np.array([0.9642, 1.0, 0.8249])


def rgb2lab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2lab` of a 0-1 double sRGB image (D65 white)."""
    xyz = _srgb_to_linear(rgb) @ _SRGB_TO_XYZ_D65.T
    return np.stack(_xyz_to_lab([xyz[..., c] for c in range(3)], _D65), axis=-1)


@lru_cache(maxsize=2)
def _linear_lut(knee: float) -> np.ndarray:
    return _srgb_to_linear(np.arange(256) / 255.0, knee)


@lru_cache(maxsize=4)
def _mixed_luts(knee: float, key: str) -> np.ndarray:
    # (3, 3, 256): entry [c, k] is m[c, k] times the linearised sRGB value of each uint8 level
    m = {"d50": _SRGB_TO_XYZ_D50, "colorspace": _RGB_TO_XYZ_COLORSPACE}[key]
    return m[:, :, None] * _linear_lut(knee)[None, None, :]


def _linear_mix(rgb8: np.ndarray, knee: float, key: str) -> list[np.ndarray]:
    """The three planes of `m @ pixel` (m: the colour matrix named by `key`) of the linearised pixels of a
    0-255 integer image, each sum left to right: planar, each product read from a 256-entry table (the same
    products as multiplying the linearised values) by OpenCV's look-up on contiguous uint8 planes; 2-3x faster
    than a matrix product over the interleaved image, the same values up to the product's rounding."""
    planes = cv2.split(np.asarray(rgb8, dtype=np.uint8))
    luts = _mixed_luts(knee, key)

    def term(c: int, k: int) -> np.ndarray:
        return cv2.LUT(planes[k], luts[c, k]).reshape(rgb8.shape[:2])

    return [term(c, 0) + term(c, 1) + term(c, 2) for c in range(3)]


def srgb2lab_uint8(rgb8: np.ndarray) -> list[np.ndarray]:
    """`applycform(uint8 rgb, makecform('srgb2lab'))`: Lab (D50) as uint8 values (L*255/100, a+128, b+128),
    as the three (H, W) float64 planes L, a, b."""
    big_l, a, b = _xyz_to_lab(_linear_mix(rgb8, 0.04045, "d50"), _D50)
    np.multiply(big_l, 255, out=big_l)
    enc = [np.divide(big_l, 100, out=big_l), np.add(a, 128, out=a), np.add(b, 128, out=b)]
    return [np.clip(np.round(e, out=e), 0, 255, out=e) for e in enc]


_RGB_TO_XYZ_COLORSPACE = np.linalg.inv(
    np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.057]])
)
_XYZ_TO_CAT02 = np.array([[0.7328, 0.4296, -0.1624], [-0.7036, 1.6975, 0.0061], [0.0030, 0.0136, 0.9834]])


def cat02_s(rgb8: np.ndarray) -> np.ndarray:
    """The S plane of `colorspace('RGB->CAT02 LMS', uint8 rgb)` (Getreuer's colorspace.m), the only one the
    release reads."""
    x, y, z = _linear_mix(rgb8, 0.0404482362771076, "colorspace")
    m = _XYZ_TO_CAT02[2]
    return x * m[0] + y * m[1] + z * m[2]


_BINOM5 = np.sqrt(2) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def laplacian_band(image: np.ndarray) -> np.ndarray:
    """Finest band of `buildLpyr(image, n)`: the image minus the expansion of its binom5-reduced version.

    Reduce: binom5 along rows and columns (reflect1 edges: OpenCV's REFLECT_101), keep every second row and
    column; expand: zeros between the kept samples, binom5 along both axes. Each as one separable OpenCV pass
    (the same linear maps as filtering one axis at a time; last-bit rounding differs, which the band's
    moment features do not see)."""
    image = np.ascontiguousarray(image, dtype=np.float64)
    lo = cv2.sepFilter2D(image, cv2.CV_64F, _BINOM5, _BINOM5, borderType=cv2.BORDER_REFLECT_101)[::2, ::2]
    up = np.zeros_like(image)
    up[::2, ::2] = lo
    hi = cv2.sepFilter2D(up, cv2.CV_64F, _BINOM5, _BINOM5, borderType=cv2.BORDER_REFLECT_101)
    return np.subtract(image, hi, out=hi)


def _central(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    x = np.asarray(x, dtype=np.float64).ravel()
    d = x - x.mean()
    d2 = d * d
    return d, d2, float(d2.mean())


# the sums of products through einsum, not BLAS `dot`: a multithreaded OpenBLAS dot costs 10-20x the CPU of
# einsum's loop on a loaded machine (and its rounding depends on the thread count)
def skewness(x: np.ndarray) -> float:
    d, d2, m2 = _central(x)
    return float(np.einsum("i,i->", d2, d) / d.size / m2**1.5) if m2 > 0 else float("nan")


def kurtosis(x: np.ndarray) -> float:
    _, d2, m2 = _central(x)
    return float(np.einsum("i,i->", d2, d2) / d2.size / m2**2) if m2 > 0 else float("nan")

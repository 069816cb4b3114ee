"""MATLAB image primitives that BRISQUE and NIQE depend on, reproduced in numpy/scipy.

Only what the two models use: `fspecial('gaussian', 7, 7/6)`, correlation with zero borders (`filter2(...,
'same')`) or replicated borders (`imfilter(..., 'replicate')`), and `imresize(im, 0.5)` (bicubic with
antialiasing, symmetric borders, computed in double precision without rounding).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage


@lru_cache(maxsize=8)
def gaussian_taps(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """1-D factor of `fspecial('gaussian', size, sigma)`: the 2-D window is `np.outer(g, g)` (it is separable
    and its normalisation factors into the two 1-D sums)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_filter(image: np.ndarray, border: str, size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """Correlate with the normalised Gaussian window; `border` is "zero" (filter2 'same') or "replicate"."""
    mode = {"zero": "constant", "replicate": "nearest"}[border]
    g = gaussian_taps(size, sigma)
    out = ndimage.correlate1d(image, g, axis=0, mode=mode, cval=0.0)
    return ndimage.correlate1d(out, g, axis=1, mode=mode, cval=0.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys' cubic convolution kernel with a = -0.5, as MATLAB's imresize uses.
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=32)
def _resize_weights(in_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Sparse weights (out_len, taps) and source indices for one axis, as MATLAB's `contributions()`."""
    out_len = int(np.ceil(in_len * scale))
    kernel_width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel by 1/scale
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric (mirror) border: 1-based index i maps into [1, in_len] by reflection with edge repetition.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], src[:, keep]


def _resize_axis(image: np.ndarray, scale: float, axis: int) -> np.ndarray:
    w, src = _resize_weights(image.shape[axis], scale)
    moved = np.moveaxis(image, axis, 0)
    out = np.einsum("ot,ot...->o...", w, moved[src])
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float = 0.5) -> np.ndarray:
    """MATLAB `imresize(image, scale)` (bicubic, antialiasing on) for a 2-D float64 image.

    MATLAB resizes the dimension with the smaller scale first; with equal scales that is rows (dim 1) first.
    """
    out = _resize_axis(np.asarray(image, dtype=np.float64), scale, 0)
    return _resize_axis(out, scale, 1)

"""Natural-scene-statistics building blocks shared by BRISQUE and NIQE.

MSCN coefficients (mean-subtracted, contrast-normalised, with the +1 stabiliser), and the moment-matching
fits of the official MATLAB `estimateggdparam` / `estimateaggdparam`: the shape is looked up on the grid
0.2:0.001:10 (so fitted shapes are multiples of 0.001, as in the official features).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gamma

from rqvqa.baselines.matlab import gaussian_filter

SHAPE_GRID = np.round(np.arange(0.2, 10 + 1e-9, 0.001), 3)
# r(shape) = Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2 for the GGD; the AGGD uses its reciprocal.
_GGD_RATIO = gamma(1 / SHAPE_GRID) * gamma(3 / SHAPE_GRID) / gamma(2 / SHAPE_GRID) ** 2
_AGGD_RATIO = 1.0 / _GGD_RATIO

# The four neighbour directions of the paired products, as MATLAB `circshift` offsets (rows, cols):
# horizontal, vertical, main diagonal, secondary diagonal.
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def mscn(image: np.ndarray, border: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (MSCN coefficients, local standard deviation) of a float64 image."""
    mu = gaussian_filter(image, border)
    var = gaussian_filter(image * image, border) - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (image - mu) / (sigma + 1), sigma


def ggd_fit(vec: np.ndarray) -> tuple[float, float]:
    """(shape, sigma) of a zero-mean generalised Gaussian (official `estimateggdparam`)."""
    sigma_sq = float(np.mean(vec * vec))
    e = float(np.mean(np.abs(vec)))
    rho = sigma_sq / e**2
    return float(SHAPE_GRID[np.argmin(np.abs(rho - _GGD_RATIO))]), float(np.sqrt(sigma_sq))


def aggd_fit(vec: np.ndarray) -> tuple[float, float, float]:
    """(shape, left sigma, right sigma) of an asymmetric GGD (official `estimateaggdparam`)."""
    # Clipping instead of boolean indexing: same sums, no large temporary copies (this is the hot loop).
    neg = np.minimum(vec, 0.0)
    pos = np.maximum(vec, 0.0)
    n_neg, n_pos = np.count_nonzero(neg), np.count_nonzero(pos)
    neg_sq, pos_sq = float(np.dot(neg, neg)), float(np.dot(pos, pos))
    left = float(np.sqrt(neg_sq / n_neg)) if n_neg else float("nan")
    right = float(np.sqrt(pos_sq / n_pos)) if n_pos else float("nan")
    gamma_hat = left / right
    mean_abs = (float(pos.sum()) - float(neg.sum())) / vec.size
    r_hat = mean_abs**2 / ((neg_sq + pos_sq) / vec.size)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    if not np.isfinite(r_norm):
        return float("nan"), left, right
    return float(SHAPE_GRID[np.argmin((_AGGD_RATIO - r_norm) ** 2)]), left, right


def nss_features(struct: np.ndarray) -> list[float]:
    """The 18 features of one scale: GGD (shape, variance) of the MSCN map, then per direction the AGGD
    (shape, mean, left variance, right variance) of the products with the circularly shifted map."""
    shape, sigma = ggd_fit(struct.ravel())
    feats = [shape, sigma**2]
    for shift in SHIFTS:
        pair = (struct * np.roll(struct, shift, axis=(0, 1))).ravel()
        a, left, right = aggd_fit(pair)
        const = np.sqrt(gamma(1 / a)) / np.sqrt(gamma(3 / a)) if np.isfinite(a) else float("nan")
        mean = (right - left) * (gamma(2 / a) / gamma(1 / a)) * const if np.isfinite(a) else float("nan")
        feats += [a, float(mean), left**2, right**2]
    return feats


# NIQE's `computefeature` differs from BRISQUE's: an AGGD (not GGD) fit of the MSCN map, scale parameters
# (beta, not variances), no normalising constant in the mean, and the fourth shift is (1, -1).
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _aggd_betas(a: float, left: float, right: float) -> tuple[float, float]:
    k = np.sqrt(gamma(1 / a) / gamma(3 / a)) if np.isfinite(a) else float("nan")
    return float(left * k), float(right * k)


def niqe_nss_features(struct: np.ndarray) -> list[float]:
    """The 18 NIQE features of one block at one scale (official `computefeature.m`)."""
    a, left, right = aggd_fit(struct.ravel())
    beta_l, beta_r = _aggd_betas(a, left, right)
    feats = [a, (beta_l + beta_r) / 2]
    for shift in NIQE_SHIFTS:
        a, left, right = aggd_fit((struct * np.roll(struct, shift, axis=(0, 1))).ravel())
        beta_l, beta_r = _aggd_betas(a, left, right)
        mean = (beta_r - beta_l) * (gamma(2 / a) / gamma(1 / a)) if np.isfinite(a) else float("nan")
        feats += [a, float(mean), beta_l, beta_r]
    return feats

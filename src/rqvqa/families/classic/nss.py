"""Natural-scene-statistics building blocks shared by BRISQUE and NIQE (and reused by VIDEVAL).

MSCN coefficients (mean-subtracted, contrast-normalised, with the +1 stabiliser), and the moment-matching
fits of the official MATLAB `estimateggdparam` / `estimateaggdparam`: the shape is the point of the grid
0.2:0.001:10 whose moment ratio is nearest (so fitted shapes are multiples of 0.001, as in the official
features).

Speed (docs/baselines.md, "Speed"): the fits are vectorised over many samples at once (NIQE fits every block
of a frame in one call), the nearest grid point is found by bisection (the moment ratio is monotonic in the
shape) instead of a scan of the 9,801-point grid, the Gamma-function terms are tabulated on the grid, and the
circularly shifted products are written into one reused buffer instead of `np.roll` copies. Sums use numpy's
own reductions, never BLAS `dot`, whose result depends on the number of OpenBLAS threads.

Degenerate samples: a fit needs values of both signs (AGGD) or a non-zero spread (GGD). The official MATLAB
code divides by zero there (NaN features); here the scalar fits raise `UnmeasurableError` and the vectorised
ones report which samples could not be fitted, so no NaN or inf ever leaves this module.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gamma

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic.matlab import gaussian_filter, row_bands

SHAPE_GRID = np.round(np.arange(0.2, 10 + 1e-9, 0.001), 3)
# Gamma(k / shape) at every grid shape: the fits only ever return grid shapes.
_G1, _G2, _G3 = (gamma(k / SHAPE_GRID) for k in (1, 2, 3))
# r(shape) = Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2 for the GGD (decreasing in a); the AGGD uses its reciprocal.
_GGD_RATIO = _G1 * _G3 / _G2**2
_AGGD_RATIO = 1.0 / _GGD_RATIO

# The four neighbour directions of the paired products, as MATLAB `circshift` offsets (rows, cols):
# horizontal, vertical, main diagonal, secondary diagonal.
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
# NIQE's `computefeature` differs from BRISQUE's: an AGGD (not GGD) fit of the MSCN map, scale parameters
# (beta, not variances), no normalising constant in the mean, and the fourth shift is (1, -1).
NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def mscn(image: np.ndarray, border: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (MSCN coefficients, local standard deviation) of a float64 image."""
    image = np.asarray(image, dtype=np.float64)
    mu = gaussian_filter(image, border)
    tmp = np.multiply(image, image)
    sigma = gaussian_filter(tmp, border)
    # In place, in the official order of operations: sigma = sqrt(abs(filter(im^2) - mu^2)).
    np.subtract(sigma, np.multiply(mu, mu, out=tmp), out=sigma)
    np.sqrt(np.abs(sigma, out=sigma), out=sigma)
    np.subtract(image, mu, out=mu)
    np.divide(mu, np.add(sigma, 1, out=tmp), out=mu)
    return mu, sigma


#: rows of context the 7x7 MSCN window reads on each side of a pixel
_HALO = 3


def mscn_rows(image: np.ndarray, start: int, stop: int, border: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows start:stop of `mscn(image, border)`, computed from those rows and the `_HALO` rows around them:
    the same values as the whole image's, without whole-image temporaries."""
    lo, hi = max(start - _HALO, 0), min(stop + _HALO, image.shape[0])
    struct, sigma = mscn(image[lo:hi], border)
    return struct[start - lo : stop - lo], sigma[start - lo : stop - lo]


# ---------------------------------------------------------------------------------------- grid lookup


def _nearest_grid_index(ratio: np.ndarray, values: np.ndarray, squared: bool) -> np.ndarray:
    """Index of the grid ratio nearest to each value; on a tie the lower index, exactly what `argmin` of the
    distance over the whole grid returns. `ratio` is strictly monotonic, so the nearest point is one of the
    two neighbours found by bisection."""
    n = ratio.size
    ascending = ratio[-1] > ratio[0]
    key = ratio if ascending else ratio[::-1]
    pos = np.searchsorted(key, values)
    i, j = np.clip(pos - 1, 0, n - 1), np.clip(pos, 0, n - 1)
    if not ascending:
        i, j = n - 1 - i, n - 1 - j
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    if squared:  # the official AGGD search minimises the squared difference, the GGD one the absolute one
        d_lo, d_hi = (ratio[lo] - values) ** 2, (ratio[hi] - values) ** 2
    else:
        d_lo, d_hi = np.abs(values - ratio[lo]), np.abs(values - ratio[hi])
    return np.where(d_hi < d_lo, hi, lo)


# --------------------------------------------------------------------------------- vectorised fits


def _as_rows(x: np.ndarray) -> np.ndarray:
    """(samples, n) view of a batch of samples; a single sample of any shape becomes one row."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(1, -1) if x.ndim != 2 else x


def _count_nonzero_rows(x: np.ndarray) -> np.ndarray:
    # with an axis numpy converts to bool first; a single row takes the direct count
    return np.count_nonzero(x, axis=1) if x.shape[0] > 1 else np.array([np.count_nonzero(x)])


def _ggd_moments(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Per row of `x`: (sum of squares, sum of absolute values), the sums a GGD fit needs (they add up over
    bands of a large image)."""
    e = np.abs(x, out=None if scratch is None else scratch.reshape(x.shape)).sum(axis=1)
    return np.stack([np.einsum("ij,ij->i", x, x), e])


def _ggd_from_moments(m: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sigma_sq, e = m[0] / n, m[1] / n
    ok = (sigma_sq > 0) & (e > 0)
    rho = np.where(ok, sigma_sq / np.where(ok, e, 1.0) ** 2, 1.0)
    return _nearest_grid_index(_GGD_RATIO, rho, squared=False), sigma_sq, ok


def _ggd_fits(x: np.ndarray, scratch: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `x`: (shape index, sigma^2, fitted?) of a zero-mean GGD (official `estimateggdparam`)."""
    return _ggd_from_moments(_ggd_moments(x, scratch), x.shape[1])


def _aggd_moments(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Per row of `x`: (negatives, their sum of squares, their sum, positives, sum of squares, sum), the sums
    an AGGD fit needs (they add up over bands of a large image). Zeros count on neither side, as in MATLAB's
    `vec(vec < 0)` / `vec(vec > 0)`. `scratch`: a float64 buffer of x's shape to reuse."""
    buf = np.empty_like(x) if scratch is None else scratch.reshape(x.shape)
    # One side at a time in the same buffer: clipping gives the same sums as boolean indexing, without copies.
    np.minimum(x, 0.0, out=buf)
    neg = [_count_nonzero_rows(buf), np.einsum("ij,ij->i", buf, buf), buf.sum(axis=1)]
    np.maximum(x, 0.0, out=buf)
    pos = [_count_nonzero_rows(buf), np.einsum("ij,ij->i", buf, buf), buf.sum(axis=1)]
    return np.stack([*neg, *pos]).astype(np.float64)


def _aggd_from_moments(m: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_neg, neg_sq, neg_sum, n_pos, pos_sq, pos_sum = m
    ok = (neg_sq > 0) & (pos_sq > 0)
    left = np.sqrt(np.where(ok, neg_sq, 1.0) / np.maximum(n_neg, 1))
    right = np.sqrt(np.where(ok, pos_sq, 1.0) / np.maximum(n_pos, 1))
    gamma_hat = left / right
    mean_abs = (pos_sum - neg_sum) / n
    r_hat = mean_abs**2 / np.where(ok, (neg_sq + pos_sq) / n, 1.0)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    ok &= np.isfinite(r_norm)
    r_norm = np.where(ok, r_norm, 1.0)
    return _nearest_grid_index(_AGGD_RATIO, r_norm, squared=True), left, right, ok


def _aggd_fits(
    x: np.ndarray, scratch: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `x`: (shape index, left sigma, right sigma, fitted?) of an asymmetric GGD (official
    `estimateaggdparam`)."""
    return _aggd_from_moments(_aggd_moments(x, scratch), x.shape[1])


def _degenerate(kind: str) -> UnmeasurableError:
    return UnmeasurableError(f"cannot fit the {kind} (flat or one-signed values)")


def ggd_fit(vec: np.ndarray) -> tuple[float, float]:
    """(shape, sigma) of a zero-mean generalised Gaussian (official `estimateggdparam`); raises
    `UnmeasurableError` for all-zero input."""
    idx, sigma_sq, ok = _ggd_fits(_as_rows(np.ravel(vec)))
    if not ok[0]:
        raise _degenerate("generalised Gaussian")
    return float(SHAPE_GRID[idx[0]]), float(np.sqrt(sigma_sq[0]))


def aggd_fit(vec: np.ndarray) -> tuple[float, float, float]:
    """(shape, left sigma, right sigma) of an asymmetric GGD (official `estimateaggdparam`); raises
    `UnmeasurableError` when the values are not of both signs."""
    idx, left, right, ok = _aggd_fits(_as_rows(np.ravel(vec)))
    if not ok[0]:
        raise _degenerate("asymmetric generalised Gaussian")
    return float(SHAPE_GRID[idx[0]]), float(left[0]), float(right[0])


# ------------------------------------------------------------------------------------ paired products


def _axis_pairs(n: int, shift: int) -> list[tuple[slice, slice]]:
    """(destination, source) slices of `np.roll(a, shift)` along one axis of length n."""
    d = shift % n
    if d == 0:
        return [(slice(0, n), slice(0, n))]
    return [(slice(d, n), slice(0, n - d)), (slice(0, d), slice(n - d, n))]


def shifted_product(s: np.ndarray, shift: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """`s * np.roll(s, shift, axis=(-2, -1))` (MATLAB `s .* circshift(s, shift)` on each trailing 2-D plane),
    written into `out` without the rolled copy; bit-identical products."""
    if s.ndim == 2 and s.flags.c_contiguous and out.flags.c_contiguous and s.size:
        return _shifted_product_flat(s, shift, out)
    for rows_dst, rows_src in _axis_pairs(s.shape[-2], shift[0]):
        for cols_dst, cols_src in _axis_pairs(s.shape[-1], shift[1]):
            dst = (..., rows_dst, cols_dst)
            np.multiply(s[dst], s[..., rows_src, cols_src], out=out[dst])
    return out


def _shifted_product_flat(s: np.ndarray, shift: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """`shifted_product` of a C-ordered 2-D plane as a roll of the flat plane by `off` = d rows and e columns
    (two flat products), then the first e columns again: there the flat roll takes the partner from one row
    too far up, the 2-D roll from the end of the row. The same products; numpy runs flat ranges several times
    faster than 2-D views whose rows are shorter than its buffer (8192 elements)."""
    h, w = s.shape
    d, e = shift[0] % h, shift[1] % w
    off, n = d * w + e, s.size
    flat, flat_out = s.reshape(-1), out.reshape(-1)
    np.multiply(flat[off:], flat[: n - off], out=flat_out[off:])
    np.multiply(flat[:off], flat[n - off :], out=flat_out[:off])
    if e:
        for rows_dst, rows_src in _axis_pairs(h, d):
            np.multiply(s[rows_dst, :e], s[rows_src, w - e :], out=out[rows_dst, :e])
    return out


# ---------------------------------------------------------------------------------------- features


def _bands_with_neighbours(image: np.ndarray, border: str):
    """(MSCN rows start:stop with the rows just above and below them, wrapped around the image as MATLAB's
    `circshift` does) of each band of `image` (`row_bands`): the whole map at once for a frame up to
    `STRIP_PIXELS`, else a band at a time."""
    h = image.shape[0]
    bands = row_bands(h, image.shape[1])
    if len(bands) == 1:
        struct = mscn(image, border)[0]
        yield np.concatenate([struct[-1:], struct, struct[:1]])
        return
    first, last = mscn_rows(image, 0, 1, border)[0], mscn_rows(image, h - 1, h, border)[0]
    for start, stop in bands:
        lo, hi = max(start - 1, 0), min(stop + 1, h)
        rows = mscn_rows(image, lo, hi, border)[0]
        yield np.concatenate([last if start == 0 else rows[:0], rows, first if stop == h else rows[:0]])


def nss_features(image: np.ndarray) -> list[float]:
    """BRISQUE's 18 features of one scale of a greyscale image: GGD (shape, variance) of the MSCN map (zero
    borders), then per direction the AGGD (shape, mean, left variance, right variance) of the products with
    the circularly shifted map. A frame over `STRIP_PIXELS` is measured a band of rows at a time (the fits'
    sums add up over the bands). Raises `UnmeasurableError` when a distribution cannot be fitted (flat
    content)."""
    ggd = np.zeros((2, 1))
    aggd = np.zeros((len(SHIFTS), 6, 1))
    for ext in _bands_with_neighbours(image, "zero"):
        struct = ext[1:-1]
        flat = np.ascontiguousarray(struct).reshape(1, -1)
        scratch = np.empty_like(flat)
        ggd += _ggd_moments(flat, scratch)
        prod = np.empty_like(struct)
        for k, (dr, dc) in enumerate(SHIFTS):
            # rolled[i, j] = map[i - dr, j - dc]: `ext` holds the rows above and below this band
            np.multiply(struct, np.roll(ext[1 - dr : ext.shape[0] - 1 - dr], dc, axis=1), out=prod)
            aggd[k] += _aggd_moments(prod.reshape(1, -1), scratch)
    n = image.shape[0] * image.shape[1]
    idx, sigma_sq, ok = _ggd_from_moments(ggd, n)
    if not ok[0]:
        raise _degenerate("generalised Gaussian of the MSCN coefficients")
    feats = [float(SHAPE_GRID[idx[0]]), float(np.sqrt(sigma_sq[0]) ** 2)]
    for k in range(len(SHIFTS)):
        i, left, right, ok = _aggd_from_moments(aggd[k], n)
        if not ok[0]:
            raise _degenerate("asymmetric generalised Gaussian of the paired products")
        i, left, right = int(i[0]), float(left[0]), float(right[0])
        const = np.sqrt(_G1[i]) / np.sqrt(_G3[i])
        mean = (right - left) * (_G2[i] / _G1[i]) * const
        feats += [float(SHAPE_GRID[i]), float(mean), left**2, right**2]
    return feats


def niqe_nss_features(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NIQE's 18 features (official `computefeature.m`) of each block of `blocks` (n, b, b), all blocks fitted
    at once. Returns ((n, 18) features, (n,) fitted?): rows not fitted hold zeros and must be dropped (the
    official code gets NaN there and drops them with `nanmean` / `nancov`)."""
    blocks = np.ascontiguousarray(blocks, dtype=np.float64)
    n = blocks.shape[0]
    rows = blocks.reshape(n, -1)
    scratch = np.empty_like(rows)
    feats = np.zeros((n, 18))
    idx, left, right, ok = _aggd_fits(rows, scratch)
    k = np.sqrt(_G1[idx] / _G3[idx])
    feats[:, 0], feats[:, 1] = SHAPE_GRID[idx], (left * k + right * k) / 2
    prod = np.empty_like(blocks)
    for d, shift in enumerate(NIQE_SHIFTS):
        shifted_product(blocks, shift, prod)
        idx, left, right, fitted = _aggd_fits(prod.reshape(n, -1), scratch)
        ok &= fitted
        k = np.sqrt(_G1[idx] / _G3[idx])
        beta_l, beta_r = left * k, right * k
        col = 2 + 4 * d
        feats[:, col] = SHAPE_GRID[idx]
        feats[:, col + 1] = (beta_r - beta_l) * (_G2[idx] / _G1[idx])
        feats[:, col + 2], feats[:, col + 3] = beta_l, beta_r
    feats[~ok] = 0.0
    return feats, ok

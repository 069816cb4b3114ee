"""NIQE (Mittal, Soundararajan, Bovik, SPL 2013): distance of an image's NSS statistics to a pristine model.

Faithful to the official LIVE release (`computequality.m`): the greyscale image (double, 0-255) is cropped to
a multiple of 96x96; at each of 2 scales MSCN coefficients use a 7x7 Gaussian (sigma 7/6) with replicated
borders (`imfilter(..., 'replicate')`), 18 features per block (96x96 at scale 1, 48x48 at scale 2, no
overlap), then `imresize(im, 0.5)`. A multivariate Gaussian fitted to the blocks' 36-d features is compared
with the pristine model: sqrt((mu_p - mu)' pinv((cov_p + cov) / 2) (mu_p - mu)). Lower is better.

The official quality computation uses every block; the sharpness selection (blocks whose mean local sigma is
at least `sharpness_threshold` x the maximum) is how the pristine model was *trained*, and is offered here as
an option (`sharpness_threshold`), off by default.

Flat content (contract of `rqvqa.errors.UnmeasurableError`): a block whose 96x96 pixels are all equal is left
out of the block set, and so is a block whose statistics cannot be fitted (the official code gets NaN features
there and drops them with `nanmean` / `nancov`). With one block left its covariance is zero (MATLAB's `cov` of
a single observation). An image smaller than 96x96, or with no block left, raises `UnmeasurableError`.

The pristine parameters (`niqe_pristine.npz`: mu 36, cov 36x36) are the official `modelparameters.mat`
values; provenance in `rqvqa/assets/PROVENANCE.md`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic.matlab import imresize, row_bands
from rqvqa.families.classic.nss import mscn_rows, niqe_nss_features

BLOCK = 96


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the official pristine NIQE model."""
    with resources.files("rqvqa.assets").joinpath("niqe_pristine.npz").open("rb") as fh:
        z = np.load(fh, allow_pickle=False)
        return z["mu"].copy(), z["cov"].copy()


def _blocks(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows * cols, b, b) blocks of an image made of rows x cols blocks, column-major (MATLAB `blkproc`)."""
    b = image.shape[0] // rows
    return image.reshape(rows, b, cols, b).transpose(2, 0, 1, 3).reshape(rows * cols, b, b)


def niqe_block_features(gray: np.ndarray, sharpness_threshold: float | None = None) -> np.ndarray:
    """(n_blocks, 36) NSS features of the measurable 96x96 blocks of a greyscale image, blocks in column-major
    order (MATLAB `blkproc`); flat and unfittable blocks are left out (module docstring); with
    `sharpness_threshold` only the sharp blocks are kept. A frame over `STRIP_PIXELS` is measured a band of
    block rows at a time (every block's features are its own: the same values)."""
    image = np.asarray(gray)  # float64 a band at a time (`mscn_rows`, `imresize`)
    if image.ndim != 2:
        raise ValueError(f"NIQE expects a 2-D greyscale image, got shape {image.shape}")
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        height, width = image.shape
        raise UnmeasurableError(f"frame {width}x{height} is below NIQE's minimum {BLOCK}x{BLOCK}")
    image = image[: rows * BLOCK, : cols * BLOCK]
    # (cols, rows, ...) grids of the blocks' results, filled a band of block rows at a time
    feats = np.zeros((2, cols, rows, 18))
    keep = np.zeros((cols, rows), dtype=bool)
    sharpness = np.zeros((cols, rows))
    for scale in (1, 2):
        b = BLOCK // scale
        for start, stop in row_bands(image.shape[0], image.shape[1], multiple=b):
            r0, r1 = start // b, stop // b
            struct, sigma = mscn_rows(image, start, stop, border="replicate")
            band_feats, fitted = niqe_nss_features(_blocks(struct, r1 - r0, cols))
            feats[scale - 1, :, r0:r1] = band_feats.reshape(cols, r1 - r0, 18)
            if scale == 1:
                pixels = _blocks(np.asarray(image[start:stop]), r1 - r0, cols)
                keep[:, r0:r1] = (pixels.min(axis=(1, 2)) != pixels.max(axis=(1, 2))).reshape(cols, r1 - r0)
                sharpness[:, r0:r1] = _blocks(sigma, r1 - r0, cols).mean(axis=(1, 2)).reshape(cols, r1 - r0)
            keep[:, r0:r1] &= fitted.reshape(cols, r1 - r0)
        if scale == 1:
            image = imresize(image, 0.5)
    keep, sharpness = keep.ravel(), sharpness.ravel()
    if not keep.any():
        raise UnmeasurableError(f"every {BLOCK}x{BLOCK} block is flat")
    feats = np.concatenate([feats[0].reshape(-1, 18), feats[1].reshape(-1, 18)], axis=1)
    if sharpness_threshold is not None:
        keep &= sharpness >= sharpness_threshold * sharpness[keep].max()
    return feats[keep]


def niqe_from_features(feats: np.ndarray) -> float:
    """NIQE distance of a set of block features (n_blocks, 36) to the pristine model."""
    mu_p, cov_p = pristine_model()
    if feats.shape[0] == 0 or not np.all(np.isfinite(feats)):
        raise ValueError("NIQE needs at least one block of finite features")
    mu = feats.mean(axis=0)
    # MATLAB's cov of a single observation is zero (it normalises by N there), numpy's is NaN.
    cov = np.cov(feats, rowvar=False) if feats.shape[0] > 1 else np.zeros_like(cov_p)
    diff = mu_p - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov) / 2) @ diff))


def niqe_score(gray: np.ndarray, sharpness_threshold: float | None = None) -> float:
    """NIQE of one greyscale image (lower is better); `UnmeasurableError` for flat or too small images."""
    return niqe_from_features(niqe_block_features(gray, sharpness_threshold))

"""NIQE (Mittal, Soundararajan, Bovik, SPL 2013): distance of an image's NSS statistics to a pristine model.

Faithful to the official LIVE release (`computequality.m`): the greyscale image (double, 0-255) is cropped to
a multiple of 96x96; at each of 2 scales MSCN coefficients use a 7x7 Gaussian (sigma 7/6) with replicated
borders (`imfilter(..., 'replicate')`), 18 features per block (96x96 at scale 1, 48x48 at scale 2, no
overlap), then `imresize(im, 0.5)`. A multivariate Gaussian fitted to the blocks' 36-d features is compared
with the pristine model: sqrt((mu_p - mu)' pinv((cov_p + cov) / 2) (mu_p - mu)). Lower is better.

The official quality computation uses every block; the sharpness selection (blocks whose mean local sigma is
at least `sharpness_threshold` x the maximum) is how the pristine model was *trained*, and is offered here as
an option (`sharpness_threshold`), off by default.

The pristine parameters (`niqe_pristine.npz`: mu 36, cov 36x36) are the official `modelparameters.mat`
values; provenance in `rqvqa/assets/PROVENANCE.md`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from rqvqa.baselines.matlab import imresize
from rqvqa.baselines.nss import mscn, niqe_nss_features

BLOCK = 96


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the official pristine NIQE model."""
    with resources.files("rqvqa.assets").joinpath("niqe_pristine.npz").open("rb") as fh:
        z = np.load(fh, allow_pickle=False)
        return z["mu"].copy(), z["cov"].copy()


def niqe_block_features(gray: np.ndarray, sharpness_threshold: float | None = None) -> np.ndarray:
    """(n_blocks, 36) NSS features of the 96x96 blocks of a greyscale image, blocks in column-major order
    (MATLAB `blkproc`); with `sharpness_threshold` only the sharp blocks are kept."""
    image = np.asarray(gray, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"NIQE expects a 2-D greyscale image, got shape {image.shape}")
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs an image of at least {BLOCK}x{BLOCK} pixels, got {image.shape}")
    image = image[: rows * BLOCK, : cols * BLOCK]
    per_scale = []
    sharpness = None
    for scale in (1, 2):
        struct, sigma = mscn(image, border="replicate")
        b = BLOCK // scale
        feats = [
            niqe_nss_features(struct[r * b : (r + 1) * b, c * b : (c + 1) * b])
            for c in range(cols)
            for r in range(rows)
        ]
        per_scale.append(np.asarray(feats, dtype=np.float64))
        if scale == 1:
            sharpness = np.array(
                [
                    sigma[r * b : (r + 1) * b, c * b : (c + 1) * b].mean()
                    for c in range(cols)
                    for r in range(rows)
                ]
            )
            image = imresize(image, 0.5)
    feats = np.concatenate(per_scale, axis=1)
    if sharpness_threshold is not None and sharpness is not None:
        feats = feats[sharpness >= sharpness_threshold * sharpness.max()]
    return feats


def niqe_from_features(feats: np.ndarray) -> float:
    """NIQE distance of a set of block features (n_blocks, 36) to the pristine model."""
    mu_p, cov_p = pristine_model()
    good = feats[np.all(np.isfinite(feats), axis=1)]
    if good.shape[0] < 2:
        return float("nan")
    mu = good.mean(axis=0)
    cov = np.cov(good, rowvar=False)
    diff = mu_p - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov) / 2) @ diff))


def niqe_score(gray: np.ndarray, sharpness_threshold: float | None = None) -> float:
    """NIQE of one greyscale image (lower is better)."""
    return niqe_from_features(niqe_block_features(gray, sharpness_threshold))

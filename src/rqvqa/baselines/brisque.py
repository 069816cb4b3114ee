"""BRISQUE (Mittal, Moorthy, Bovik, TIP 2012): 36 spatial NSS features and the LIVE-trained quality score.

Faithful to the official MATLAB release (`brisque_feature.m`): features of the image as given (double, 0-255
luma), MSCN with a 7x7 Gaussian (sigma 7/6) applied by `filter2(..., 'same')` (zero borders), paired products
with `circshift` (wrap-around borders), two scales with `imresize(im, 0.5)` (bicubic, antialiased).

The quality score applies the official LIVE release's libsvm model (`allmodel`, RBF epsilon-SVR, gamma 0.05)
after `svm-scale` with the release's `allrange` to [-1, 1]; see `rqvqa/assets/PROVENANCE.md`. Lower is better;
roughly 0 (pristine) to 100 (very distorted), and it can leave that range.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

from rqvqa.baselines.matlab import imresize
from rqvqa.baselines.nss import mscn, nss_features

N_FEATURES = 36
#: feature names in official order (scale 1 then scale 2)
FEATURE_NAMES = [
    f"s{s}_{name}"
    for s in (1, 2)
    for name in ["ggd_shape", "ggd_var"]
    + [f"{d}_{p}" for d in ("h", "v", "d1", "d2") for p in ("shape", "mean", "lvar", "rvar")]
]


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of one greyscale image (2-D array, values on the 0-255 scale)."""
    image = np.asarray(gray, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"BRISQUE expects a 2-D greyscale image, got shape {image.shape}")
    feats: list[float] = []
    for scale in range(2):
        struct, _ = mscn(image, border="zero")
        feats += nss_features(struct)
        if scale == 0:
            image = imresize(image, 0.5)
    return np.asarray(feats, dtype=np.float64)


class SVRModel:
    """An RBF epsilon-SVR in libsvm form with its `svm-scale` feature ranges: prediction in numpy."""

    def __init__(self, support_vectors, dual_coef, rho: float, gamma: float, feat_min, feat_max,
                 lower: float = -1.0, upper: float = 1.0):
        self.support_vectors = np.asarray(support_vectors, dtype=np.float64)
        self.dual_coef = np.asarray(dual_coef, dtype=np.float64)
        self.rho, self.gamma = float(rho), float(gamma)
        self.feat_min, self.feat_max = np.asarray(feat_min, np.float64), np.asarray(feat_max, np.float64)
        self.lower, self.upper = float(lower), float(upper)

    def scale(self, feats: np.ndarray) -> np.ndarray:
        span = self.feat_max - self.feat_min
        return self.lower + (self.upper - self.lower) * (feats - self.feat_min) / span

    def predict(self, feats: np.ndarray) -> np.ndarray:
        x = self.scale(np.atleast_2d(np.asarray(feats, dtype=np.float64)))
        d2 = ((x[:, None, :] - self.support_vectors[None, :, :]) ** 2).sum(-1)
        return np.exp(-self.gamma * d2) @ self.dual_coef - self.rho


@lru_cache(maxsize=1)
def live_model() -> SVRModel:
    """The official LIVE-trained BRISQUE SVR, shipped as JSON in `rqvqa.assets`."""
    blob = json.loads(resources.files("rqvqa.assets").joinpath("brisque_live_svr.json").read_text())
    return SVRModel(blob["support_vectors"], blob["dual_coef"], blob["rho"], blob["gamma"],
                    blob["range_min"], blob["range_max"], blob["range_lower"], blob["range_upper"])


def brisque_score(gray: np.ndarray) -> float:
    """BRISQUE quality score of one greyscale image (lower is better)."""
    return float(live_model().predict(brisque_features(gray))[0])

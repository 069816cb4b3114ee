"""BRISQUE (Mittal, Moorthy, Bovik, TIP 2012): 36 spatial NSS features and the LIVE-trained quality score.

Faithful to the official MATLAB release (`brisque_feature.m`): features of the image as given (double, 0-255
luma), MSCN with a 7x7 Gaussian (sigma 7/6) applied by `filter2(..., 'same')` (one 2-D correlation, zero
borders), paired products with `circshift` (wrap-around borders), two scales with `imresize(im, 0.5)`
(bicubic, antialiased).

A perfectly flat image (every pixel equal, e.g. black) has no statistics to fit: it raises
`rqvqa.errors.UnmeasurableError`, as does any image whose coefficients cannot be fitted.

The quality score applies the official LIVE release's libsvm model (`allmodel`, RBF epsilon-SVR, gamma 0.05)
after `svm-scale` with the release's `allrange` to [-1, 1]; see `rqvqa/assets/PROVENANCE.md`. Lower is better;
roughly 0 (pristine) to 100 (very distorted), and it can leave that range.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic.matlab import imresize
from rqvqa.families.classic.nss import nss_features
from rqvqa.svr import RbfSVR

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
    image = np.asarray(gray)  # float64 a band at a time (`nss_features`, `imresize`)
    if image.ndim != 2:
        raise ValueError(f"BRISQUE expects a 2-D greyscale image, got shape {image.shape}")
    if image.size == 0 or image.min() == image.max():
        value = f" (every pixel is {image.flat[0]:g})" if image.size else ""
        raise UnmeasurableError(f"flat frame{value}")
    feats: list[float] = []
    for scale in range(2):
        feats += nss_features(image)
        if scale == 0:
            image = imresize(image, 0.5)
    return np.asarray(feats, dtype=np.float64)


@lru_cache(maxsize=1)
def live_model() -> RbfSVR:
    """The official LIVE-trained BRISQUE SVR, shipped as JSON in `rqvqa.assets`."""
    blob = json.loads(resources.files("rqvqa.assets").joinpath("brisque_live_svr.json").read_text())
    return RbfSVR.from_libsvm(blob)


def brisque_score(gray: np.ndarray) -> float:
    """BRISQUE quality score of one greyscale image (lower is better)."""
    return float(live_model().predict(brisque_features(gray))[0])

"""The released VIDEVAL models (Tu et al., TIP 2021): RBF SVR on MinMax-scaled features, then a 4-parameter
logistic to MOS 1-5, as plain numbers in `rqvqa/assets/` (see `PROVENANCE.md`).

`predict` follows the release's `predict` field: NaN/inf features become 0, `z = x * scale + min`,
`raw = sum_i dual_coef_i exp(-gamma |z - sv_i|^2) + intercept`, `mos = b2 + (b1 - b2) / (1 + exp(-(raw - b3)
/ |b4|))`.

Out of distribution, two ways an SVR score stops being a measurement:

- `ood_distance`: how far the scaled features leave the training range (the MinMax scaler maps the training
  data to [0, 1] per feature): the largest excess over all features, in units of that feature's training
  range. Beyond `OOD_RANGE` the SVR extrapolates.
- `support_distance`: `gamma * min_i |z - sv_i|^2`, the exponent of the largest kernel term: above
  `OOD_KERNEL` every kernel term is below exp(-OOD_KERNEL) and the score collapses to the intercept.

Either flags the prediction `ood` instead of passing it off as a measurement.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from rqvqa.errors import WeightsError
from rqvqa.svr import RbfSVR

#: released model files in `rqvqa/assets`, by feature set
ASSETS = {
    "videval": "videval_allcombined_svr.json",
    "videval-light": "videval_light720_6fps_allcombined_svr.json",
}
#: excess over the training range (in training ranges) beyond which a prediction is out of distribution
OOD_RANGE = 0.5
#: kernel exponent beyond which the SVR output is its intercept to within exp(-OOD_KERNEL) per unit weight
OOD_KERNEL = 5.0


@dataclass
class ReleasedModel:
    svr: RbfSVR
    logistic4: tuple[float, float, float, float]
    meta: dict[str, Any]

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> ReleasedModel:
        scaler = blob["scaler"]
        scale = np.asarray(scaler["scale"], dtype=np.float64)
        minimum = np.asarray(scaler["min"], dtype=np.float64)
        if blob.get("kind") != "rbf_svr" or scaler.get("kind") != "minmax" or np.any(scale == 0):
            raise ValueError("expected an RBF SVR with a MinMax scaler of non-zero scale")
        # x * scale + min  ==  (x - center) / width  with width = 1/scale, center = -min/scale
        svr = RbfSVR(
            blob["support_vectors"],
            blob["dual_coef"],
            blob["intercept"],
            blob["gamma"],
            center=-minimum / scale,
            width=1.0 / scale,
        )
        b = tuple(float(v) for v in blob["logistic4"])
        meta = {k: blob[k] for k in ("C", "epsilon", "n_training_videos", "source") if k in blob}
        return cls(svr, b, meta)  # type: ignore[arg-type]

    @property
    def n_features(self) -> int:
        return self.svr.n_features

    def _clean(self, x: np.ndarray) -> np.ndarray:
        x = clean_features(x)
        if x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[1]}")
        return x

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        return self.svr.predict(self._clean(x))

    def to_mos(self, raw: np.ndarray) -> np.ndarray:
        b1, b2, b3, b4 = self.logistic4
        t = np.clip(-(np.asarray(raw, dtype=np.float64) - b3) / abs(b4), -700.0, 700.0)
        return b2 + (b1 - b2) / (1.0 + np.exp(t))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """MOS (1-5 scale) for rows of features (n, 60) or one row (60,) -> (n,)."""
        return self.to_mos(self.predict_raw(x))

    @property
    def training_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature (min, max) of the training data: what the MinMax scaler maps to 0 and 1."""
        return self.svr.center, self.svr.center + self.svr.width

    def ood(self, x: np.ndarray, names: list[str] | None = None) -> dict[str, Any]:
        low, high = self.training_range
        return ood_report(self.svr, self._clean(x), low, high, names)


def clean_features(x: np.ndarray) -> np.ndarray:
    """Rows of features with NaN/inf set to 0 (the release's convention)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return np.where(np.isfinite(x), x, 0.0)


def ood_report(
    svr: RbfSVR, x: np.ndarray, low: np.ndarray, high: np.ndarray, names: list[str] | None = None
) -> dict[str, Any]:
    """{"ood", "ood_distance", "ood_feature", "support_distance"} of one feature row (see the module notes):
    `low`/`high` are the per-feature training range; `ood_feature` is None inside the range."""
    x = clean_features(x)
    width = np.where(high > low, high - low, 1.0)
    excess = np.maximum((low - x) / width, (x - high) / width).clip(min=0.0)[0]
    where = int(excess.argmax())
    s = svr.scale(x)
    sv = svr.support_vectors
    d2 = (s * s).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2 * s @ sv.T
    kernel = float(svr.gamma * np.maximum(d2, 0.0).min())
    dist = float(excess[where])
    return {
        "ood": bool(dist > OOD_RANGE or kernel > OOD_KERNEL),
        "ood_distance": dist if math.isfinite(dist) else 1e300,
        "ood_feature": None if dist == 0 else (names[where] if names else where),
        "support_distance": kernel if math.isfinite(kernel) else 1e300,
    }


@lru_cache(maxsize=4)
def released_model(feature_set: str) -> ReleasedModel:
    """The released All-Combined model of `feature_set` ("videval" or "videval-light")."""
    if feature_set not in ASSETS:
        raise WeightsError(f"no released VIDEVAL model for {feature_set!r}; known: {', '.join(ASSETS)}")
    name = ASSETS[feature_set]
    try:
        blob = json.loads(resources.files("rqvqa.assets").joinpath(name).read_text())
        return ReleasedModel.from_dict(blob)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(
            f"cannot load the released VIDEVAL model ({exc})", f"rqvqa/assets/{name}"
        ) from None

"""Prediction with a trained RBF support-vector regressor, in numpy (no libsvm / scikit-learn at run time).

`f(x) = sum_i dual_coef_i * exp(-gamma * |sv_i - s(x)|^2) + intercept`, where the input scaling is
`s(x) = (x - center) / width + offset` (covers both libsvm's `svm-scale` to [lower, upper] and a z-score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class RbfSVR:
    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float
    center: np.ndarray
    width: np.ndarray
    offset: float = 0.0

    def __post_init__(self) -> None:
        self.support_vectors = np.asarray(self.support_vectors, dtype=np.float64)
        self.dual_coef = np.asarray(self.dual_coef, dtype=np.float64).reshape(-1)
        self.center = np.asarray(self.center, dtype=np.float64)
        self.width = np.asarray(self.width, dtype=np.float64)
        self.intercept, self.gamma, self.offset = float(self.intercept), float(self.gamma), float(self.offset)

    @property
    def n_features(self) -> int:
        return int(self.support_vectors.shape[1])

    def scale(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.center) / self.width + self.offset

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows of `x` (n, n_features) or one vector (n_features,) -> (n,)."""
        s = self.scale(np.atleast_2d(x))
        d2 = (
            (s * s).sum(1)[:, None]
            + (self.support_vectors**2).sum(1)[None, :]
            - 2 * s @ self.support_vectors.T
        )
        return np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.dual_coef + self.intercept

    @classmethod
    def from_libsvm(cls, blob: dict[str, Any]) -> RbfSVR:
        """From a libsvm model with `svm-scale` ranges (keys as in `brisque_live_svr.json`)."""
        lo, hi = float(blob["range_lower"]), float(blob["range_upper"])
        fmin, fmax = np.asarray(blob["range_min"], np.float64), np.asarray(blob["range_max"], np.float64)
        return cls(
            blob["support_vectors"],
            blob["dual_coef"],
            -float(blob["rho"]),
            blob["gamma"],
            center=fmin,
            width=(fmax - fmin) / (hi - lo),
            offset=lo,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "intercept": self.intercept,
            "center": self.center.tolist(),
            "width": self.width.tolist(),
            "offset": self.offset,
            "dual_coef": self.dual_coef.tolist(),
            "support_vectors": self.support_vectors.tolist(),
        }

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> RbfSVR:
        return cls(
            blob["support_vectors"],
            blob["dual_coef"],
            blob["intercept"],
            blob["gamma"],
            center=blob["center"],
            width=blob["width"],
            offset=blob.get("offset", 0.0),
        )

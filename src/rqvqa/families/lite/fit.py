"""Fitting a lite regressor on KoNViD-1k features (`scripts/train_lite.py`): z-scored inputs, an RBF
epsilon-SVR, (C, gamma) by 5-fold cross-validation. Used to measure the alternatives in `docs/videval.md`."""

from __future__ import annotations

from typing import Any

import numpy as np

from rqvqa.families.lite.predictor import LITE_V1_FEATURES, MOS_RANGE, LiteModel
from rqvqa.families.videval.model import clean_features
from rqvqa.svr import RbfSVR

#: hyper-parameter grid of the lite SVR (z-scored inputs), searched by 5-fold CV on the training data
LITE_GRID = {"C": [1.0, 2.0, 4.0, 8.0, 16.0], "gamma": [1 / 256, 1 / 128, 1 / 64, 1 / 32, 1 / 16]}


def select_hyperparameters(x: np.ndarray, y: np.ndarray, n_jobs: int = 1) -> tuple[float, float]:
    """(C, gamma) of the lite SVR by 5-fold cross-validated RMSE over `LITE_GRID`."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.svm import SVR

    z, _, _ = _zscore(clean_features(x))
    search = GridSearchCV(
        SVR(kernel="rbf", epsilon=0.1),
        LITE_GRID,
        cv=KFold(5, shuffle=True, random_state=0),
        scoring="neg_root_mean_squared_error",
        n_jobs=n_jobs,
    ).fit(z, np.asarray(y, dtype=np.float64).reshape(-1))
    return float(search.best_params_["C"]), float(search.best_params_["gamma"])


def _zscore(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    center, width = x.mean(axis=0), x.std(axis=0)
    width = np.where(width > 0, width, 1.0)
    return (x - center) / width, center, width


def fit_lite(
    x: np.ndarray,
    y: np.ndarray,
    c: float | None = None,
    gamma: float | None = None,
    meta: dict[str, Any] | None = None,
    features: list[str] | None = None,
) -> LiteModel:
    """Fit the lite regressor: z-score, RBF epsilon-SVR (epsilon 0.1); (C, gamma) by CV unless given.
    `features`: the names of x's columns (default: lite-v1's)."""
    from sklearn.svm import SVR

    x = clean_features(x)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if c is None or gamma is None:
        c, gamma = select_hyperparameters(x, y)
    z, center, width = _zscore(x)
    fitted = SVR(kernel="rbf", C=c, gamma=gamma, epsilon=0.1).fit(z, y)
    svr = RbfSVR(
        support_vectors=fitted.support_vectors_,
        dual_coef=fitted.dual_coef_.reshape(-1),
        intercept=float(fitted.intercept_[0]),
        gamma=float(gamma),
        center=center,
        width=width,
    )
    info = {"C": float(c), "gamma": float(gamma), "epsilon": 0.1, "n_train": int(len(y)), **(meta or {})}
    names = list(features or LITE_V1_FEATURES)
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} feature names for {x.shape[1]} columns")
    return LiteModel(names, svr, MOS_RANGE, info)

"""The lite model: offline, CPU-only video quality on the 1-5 MOS scale, shipped inside the package.

`lite` (v2, the default model): the 60 VIDEVAL features computed at the release's fastest setting
(VIDEVAL_light480_3fps: frames downscaled to 480 lines, 3 frames per second, TLVQM once per second) scored by
the released All-Combined VIDEVAL_light SVR (trained by Tu et al. on KoNViD-1k + LIVE-VQC + YouTube-UGC,
`rqvqa/assets/videval_light720_6fps_allcombined_svr.json`). Its output carries `ood` (features outside the
model's training range or kernel support, see `rqvqa.videval.model`) instead of silently returning the SVR's
intercept. Why this model, and what it costs: `docs/videval.md` (degradation table, SRCC, speed).

`lite-v1` (the first lite model, kept for comparison and speed): the 36 BRISQUE video features + the coded bit
budget log(bits per pixel per frame) -> an RBF SVR trained on KoNViD-1k (`rqvqa/assets/lite_konvid1k.json`).
The bit budget measures compression *effort*: strong re-compression raises its score (`docs/videval.md`).

`fit_lite` / `scripts/train_lite.py` fit a KoNViD-1k-only SVR of the same kind on any feature set (used to
measure the alternatives in `docs/videval.md`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rqvqa.baselines.brisque import FEATURE_NAMES
from rqvqa.baselines.predictors import FramePredictor, unmeasured_extra
from rqvqa.baselines.svr import RbfSVR
from rqvqa.baselines.video import bit_budget, video_features
from rqvqa.errors import WeightsError
from rqvqa.video.reader import probe
from rqvqa.videval.model import ReleasedModel, clean_features, released_model
from rqvqa.videval.predictors import VidevalFeaturePredictor
from rqvqa.zoo import Prediction, register_predictor

ASSET_V1 = "lite_konvid1k.json"
#: the feature set of lite v2 (`rqvqa.videval.extract.VARIANTS`) and the released model that scores it
LITE_VARIANT = "videval-light480"
LITE_MODEL = "videval-light"
LITE_V1_FEATURES = [*(f"brisque_{n}" for n in FEATURE_NAMES), "log_bpp"]
MOS_RANGE = (1.0, 5.0)


@dataclass
class LiteModel:
    """The regressor and what it was trained on."""

    features: list[str]
    svr: RbfSVR
    clip: tuple[float, float]
    meta: dict[str, Any]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.svr.predict(clean_features(x)), *self.clip)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "clip": list(self.clip),
            "meta": self.meta,
            "svr": self.svr.to_dict(),
        }

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> LiteModel:
        return cls(
            list(blob["features"]), RbfSVR.from_dict(blob["svr"]), tuple(blob["clip"]), blob.get("meta", {})
        )


def load_lite(
    path: str | os.PathLike[str] | None = None, asset: str = ASSET_V1, features: list[str] | None = None
) -> LiteModel:
    """Load a fitted lite regressor: the packaged `lite-v1` one, or a JSON file / a folder holding `asset`.
    `features`: the feature names the file must declare (default: lite-v1's)."""
    features = features or LITE_V1_FEATURES
    try:
        if path is None:
            text = resources.files("rqvqa.assets").joinpath(asset).read_text()
            where = f"rqvqa/assets/{asset}"
        else:
            p = Path(path)
            p = p / asset if p.is_dir() else p
            text, where = p.read_text(), str(p)
    except OSError as exc:
        raise WeightsError(f"cannot read the lite model ({exc.strerror or exc})", path or asset) from None
    try:
        model = LiteModel.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"not a lite model file ({exc})", where) from None
    if model.features != features or model.svr.n_features != len(features):
        raise WeightsError(
            f"lite model features {model.features[:3]}... differ from the expected ones", where
        )
    return model


@lru_cache(maxsize=1)
def _packaged_v1() -> LiteModel:
    return load_lite(None)


@register_predictor
class LitePredictor(VidevalFeaturePredictor):
    name = "lite"
    variant = LITE_VARIANT

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str = "cpu"):
        super().__init__(weights=weights, device=device)

    def model(self) -> ReleasedModel:
        return released_model(LITE_MODEL)


@register_predictor
class LiteV1Predictor(FramePredictor):
    name = "lite-v1"
    # the bit-budget feature reads the coded stream: in-memory frames are coded as a typical upload would be
    # (H.264 CRF 23), not losslessly, whose bit budget the model never saw
    frames_codec = {"codec": "libx264", "crf": 23}

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        max_frames: int | None = None,
    ):
        super().__init__(weights=weights, device=device, max_frames=max_frames)
        # A weights folder without a lite file falls back to the packaged model.
        use = (
            weights
            if weights is not None and (Path(weights).is_file() or (Path(weights) / ASSET_V1).is_file())
            else None
        )
        self.model = _packaged_v1() if use is None else load_lite(use)

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        info = probe(path)
        vf = video_features(path, brisque=True, max_frames=self.max_frames, info=info)
        bits = bit_budget(path, info, vf.n_seconds)
        video_x = np.concatenate([vf.brisque_video, [bits.log_bpp]])
        # a second whose frame could not be measured stays None (the FramePredictor rule)
        per_second = [
            None if r is None else float(self.model.predict(np.concatenate([vf.brisque[r], [b]]))[0])
            for r, b in zip(vf.second_rows(), bits.log_bpp_per_second, strict=True)
        ]
        return Prediction(
            score=float(self.model.predict(video_x)[0]),
            per_second=per_second,
            extra={
                "frames": vf.frame_indices,
                "log_bpp": bits.log_bpp,
                "fast": self.max_frames is not None,
                **unmeasured_extra(vf),
            },
        )


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

"""The lite model: offline, CPU-only video quality on the 1-5 MOS scale, shipped inside the package.

`lite` (v2, the default model): the 60 VIDEVAL features computed at the release's fastest setting
(VIDEVAL_light480_3fps: frames downscaled to 480 lines, 3 frames per second, TLVQM once per second) scored by
the released All-Combined VIDEVAL_light SVR (trained by Tu et al. on KoNViD-1k + LIVE-VQC + YouTube-UGC,
`rqvqa/assets/videval_light720_6fps_allcombined_svr.json`). Its output carries `ood` (features outside the
model's training range or kernel support, see `rqvqa.families.videval.model`) instead of silently returning
the SVR's intercept. Why this model, and what it costs: `docs/videval.md` (degradation table, SRCC, speed).

`lite-v1` (the first lite model, kept for comparison and speed): the 36 BRISQUE video features + the coded bit
budget log(bits per pixel per frame) -> an RBF SVR trained on KoNViD-1k (`rqvqa/assets/lite_konvid1k.json`).
The bit budget measures compression *effort*: strong re-compression raises its score (`docs/videval.md`).

`rqvqa.families.lite.fit` / `scripts/train_lite.py` fit a KoNViD-1k-only SVR of the same kind on any feature
set (used to measure the alternatives in `docs/videval.md`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rqvqa.errors import WeightsError
from rqvqa.families.classic.brisque import FEATURE_NAMES
from rqvqa.families.classic.frames import BitBudget, CodedBits, VideoFeatures
from rqvqa.families.classic.predictor import FramePredictor, unmeasured_extra
from rqvqa.families.videval.model import clean_features
from rqvqa.families.videval.predictor import VidevalFeaturePredictor
from rqvqa.results import Prediction
from rqvqa.svr import RbfSVR
from rqvqa.video.decode import Decoded, Product

ASSET_V1 = "lite_konvid1k.json"
#: the feature set of lite v2 (`rqvqa.families.videval.extract.VARIANTS`) and the released model that scores
#: it
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


class LitePredictor(VidevalFeaturePredictor):
    name: ClassVar[str] = "lite"
    variant = LITE_VARIANT
    model_name = LITE_MODEL


class LiteV1Predictor(FramePredictor):
    name: ClassVar[str] = "lite-v1"
    loaded = ("_model",)

    def __init__(self, weights: str | os.PathLike[str] | None = None, max_frames: int | None = None):
        """`weights`: a lite model JSON file, or a folder holding `lite_konvid1k.json` (None: the packaged
        model); `max_frames`: fast mode. The bit-budget feature reads the coded stream, so frames in memory
        cannot be scored by this model (use `lite`)."""
        super().__init__(max_frames=max_frames)
        self.weights = None if weights is None else Path(weights)
        if self.weights is not None:
            if self.weights.is_dir():
                self.weights = self.weights / ASSET_V1
            if not self.weights.is_file():
                raise WeightsError(
                    f"no lite model file here (a lite JSON, or a folder holding {ASSET_V1})", self.weights
                )
        self._model: LiteModel | None = None
        self.card = self.make_card(
            weights="packaged" if self.weights is None else self.weights.name,
            options={"max_frames": max_frames},
        )

    def products(self) -> dict[str, Product]:
        return {"frames": self.frames, "bits": CodedBits()}

    def setup(self) -> None:
        if self._model is None:
            self._model = _packaged_v1() if self.weights is None else load_lite(self.weights)

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        self.setup()
        return [self._score(d["frames"], d["bits"]) for d in batch]

    def _score(self, vf: VideoFeatures, bits: BitBudget) -> Prediction:
        video_x = np.concatenate([vf.brisque_video, [bits.log_bpp]])
        # a second whose frame could not be measured stays None (the FramePredictor rule)
        per_second = [
            None if r is None else float(self._model.predict(np.concatenate([vf.brisque[r], [b]]))[0])
            for r, b in zip(vf.second_rows(), bits.log_bpp_per_second, strict=True)
        ]
        return Prediction(
            score=float(self._model.predict(video_x)[0]),
            per_second=per_second,
            extra={
                "frames": vf.frame_indices,
                "second_frames": vf.second_frames(),
                "log_bpp": bits.log_bpp,
                "fast": self.max_frames is not None,
                **unmeasured_extra(vf),
            },
        )

"""`videval` and `videval-light`: the Python VIDEVAL features of a video scored by the released All-Combined
models (KoNViD-1k + LIVE-VQC + YouTube-UGC, MOS 1-5).

The video score applies the model to the 60 pooled features; each second's score applies it to that second's
pooling window and TLVQM frame (`None` for a second whose frames were unmeasurable). `extra` carries `ood`
(the features leave the training range or the kernel support; see `rqvqa.families.videval.model`),
`ood_distance`, `ood_feature`, `support_distance` and the 60 features by name. The features are computed in
the decode stage (`VidevalFrames`); the model stage evaluates the SVR on every row of a batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from rqvqa.families.videval.extract import FEATURE_NAMES, VidevalFrames
from rqvqa.families.videval.model import ReleasedModel, released_model
from rqvqa.predictor import Predictor
from rqvqa.results import Prediction
from rqvqa.video.decode import Decoded, Product


class VidevalFeaturePredictor(Predictor):
    """A released regressor over the 60 VIDEVAL features of `variant`."""

    #: the feature set (`rqvqa.families.videval.extract.VARIANTS`) and the released model that scores it
    variant: ClassVar[str]
    model_name: ClassVar[str]
    loaded = ("_model",)

    def __init__(self) -> None:
        self._model: ReleasedModel | None = None
        self.card = self.make_card(weights="packaged", options={"features": self.variant})

    def setup(self) -> None:
        if self._model is None:
            self._model = released_model(self.model_name)

    def products(self) -> dict[str, Product]:
        return {"videval": VidevalFrames(self.variant)}

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        self.setup()
        model = self._model
        features = [d["videval"] for d in batch]
        video_scores = model.predict(np.stack([vf.features for vf in features]))
        rows = [vf.per_second_rows() for vf in features]
        stacked = np.concatenate(rows)
        flat = model.predict(stacked) if len(stacked) else np.empty(0)
        second_scores = np.split(flat, np.cumsum([len(r) for r in rows])[:-1])
        out = []
        for vf, score, video_rows, scores in zip(features, video_scores, rows, second_scores, strict=True):
            per_second = [
                None if np.isnan(r).any() else float(s) for r, s in zip(video_rows, scores, strict=True)
            ]
            named = {
                n: float(v) if np.isfinite(v) else None
                for n, v in zip(FEATURE_NAMES, vf.features, strict=True)
            }
            extra = {
                **model.ood(vf.features, FEATURE_NAMES),
                "frames": vf.frame_indices,
                "second_frames": vf.second_frames,
                "features": named,
                "unmeasurable": vf.unmeasurable,
            }
            out.append(Prediction(score=float(score), per_second=per_second, extra=extra))
        return out


class VidevalPredictor(VidevalFeaturePredictor):
    name: ClassVar[str] = "videval"
    variant = "videval"
    model_name = "videval"


class VidevalLightPredictor(VidevalFeaturePredictor):
    name: ClassVar[str] = "videval-light"
    variant = "videval-light"
    model_name = "videval-light"

"""`videval` and `videval-light` as model-zoo predictors: the Python VIDEVAL features of a video scored by the
released All-Combined models (KoNViD-1k + LIVE-VQC + YouTube-UGC, MOS 1-5).

The video score applies the model to the 60 pooled features; each second's score applies it to that second's
pooling window and TLVQM frame (`None` for a second whose frames were unmeasurable). `extra` carries `ood`
(the features leave the training range or the kernel support; see `rqvqa.videval.model`), `ood_distance`,
`ood_feature`, `support_distance` and the 60 features.
"""

from __future__ import annotations

import os

import numpy as np

from rqvqa.videval.extract import FEATURE_NAMES, videval_features
from rqvqa.videval.model import released_model
from rqvqa.zoo import Prediction, Predictor, register_predictor


class VidevalFeaturePredictor(Predictor):
    """A regressor over the 60 VIDEVAL features of `variant`: `model()` has `predict(rows)` and
    `ood(row, names)`."""

    variant: str

    def model(self):
        return released_model(self.variant)

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        vf = videval_features(path, self.variant)
        model = self.model()
        score = float(model.predict(vf.features)[0])
        rows = vf.per_second_rows()
        per_second: list[float | None] = []
        if rows.size:
            scores = model.predict(rows)
            per_second = [None if np.isnan(r).any() else float(s) for r, s in zip(rows, scores, strict=True)]
        features = [float(v) if np.isfinite(v) else None for v in vf.features]
        return Prediction(
            score=score,
            per_second=per_second,  # type: ignore[arg-type]
            extra={
                **model.ood(vf.features, FEATURE_NAMES),
                "frames": vf.frame_indices,
                "features": features,
                "unmeasurable": vf.unmeasurable,
            },
        )


@register_predictor
class VidevalPredictor(VidevalFeaturePredictor):
    name = "videval"
    variant = "videval"


@register_predictor
class VidevalLightPredictor(VidevalFeaturePredictor):
    name = "videval-light"
    variant = "videval-light"

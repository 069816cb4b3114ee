"""The lite models: offline, CPU-only quality on the 1-5 MOS scale, shipped inside the package.

`lite` (the default model) scores the VIDEVAL_light480_3fps features with the released All-Combined
VIDEVAL_light model; `lite-v1` (the first lite model) scores BRISQUE + the coded bit budget with an SVR fitted
on KoNViD-1k. Code: `rqvqa.families.lite.predictor`; the KoNViD-only fit: `rqvqa.families.lite.fit`.
"""

from rqvqa.registry import ModelCard

MODELS = (
    ModelCard(
        name="lite",
        family="lite",
        predictor="rqvqa.families.lite.predictor:LitePredictor",
        description="VIDEVAL_light480_3fps features -> released All-Combined VIDEVAL_light SVR; flags "
        "out-of-distribution inputs",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale="MOS (1 bad - 5 excellent), VIDEVAL All-Combined scale",
    ),
    ModelCard(
        name="lite-v1",
        family="lite",
        predictor="rqvqa.families.lite.predictor:LiteV1Predictor",
        description="the first lite model: BRISQUE + bit budget -> KoNViD-1k SVR (fast; misranks re-encodes)",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale="MOS (1 bad - 5 excellent), KoNViD-1k scale",
    ),
)

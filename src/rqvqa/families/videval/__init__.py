"""VIDEVAL (Tu et al., "UGC-VQA: Benchmarking Blind Video Quality Assessment for User Generated Content",
TIP 2021) in Python: the 60 VIDEVAL / VIDEVAL_light features of the official MATLAB release (`extract`, with
the frame-level `frame`, `tlvqm` and MATLAB primitives `ops`) and its released All-Combined models (`model`,
`predictor`). See `docs/videval.md` for the fidelity table and the speed figures."""

from rqvqa.registry import ModelCard

_SCALE = "MOS (1 bad - 5 excellent), VIDEVAL All-Combined scale"

MODELS = (
    ModelCard(
        name="videval",
        family="videval",
        predictor="rqvqa.families.videval.predictor:VidevalPredictor",
        description="VIDEVAL features (every 2nd frame) -> released All-Combined SVR (offline, CPU)",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale=_SCALE,
    ),
    ModelCard(
        name="videval-light",
        family="videval",
        predictor="rqvqa.families.videval.predictor:VidevalLightPredictor",
        description="VIDEVAL_light720_6fps features -> released All-Combined SVR (offline, CPU)",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale=_SCALE,
    ),
)

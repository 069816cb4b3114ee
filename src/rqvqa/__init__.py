"""rqvqa: blind video quality assessment with rich quality-aware features (RQ-VQA).

Python API (`rqvqa.api`)::

    import rqvqa
    rqvqa.list_models()                              # the zoo, with what can run now (imports no model)
    model = rqvqa.create_predictor("lite")
    model.predict("clip.mp4")                        # one video -> Prediction(score, per_second, extra)
    for row in model.predict_many(["videos/"], out="scores.parquet"):
        ...                                          # one result row per video, as each finishes
    model.predict_frames(frames, fps=30)             # frames already in memory, (T, H, W, 3) uint8 RGB
"""

from rqvqa.api import create_predictor, list_models
from rqvqa.errors import RqvqaError
from rqvqa.predictor import Predictor
from rqvqa.results import Prediction
from rqvqa.version import __version__

__all__ = ["Prediction", "Predictor", "RqvqaError", "__version__", "create_predictor", "list_models"]

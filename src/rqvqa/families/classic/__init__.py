"""Classical no-reference quality models, MATLAB-faithful: BRISQUE and NIQE (numpy/scipy only).

- `matlab`: the MATLAB primitives they rely on (bicubic `imresize` with antialiasing, `fspecial('gaussian')`,
  `filter2`/`imfilter` borders);
- `nss`: MSCN coefficients and the GGD / AGGD moment-matching fits shared by both (and by VIDEVAL);
- `brisque`, `niqe`: image features and scores;
- `frames`: the frames the UGC-VQA benchmark reads (one per second) and their video-level features;
- `predictor`: `brisque` and `niqe` in the model zoo.
"""

from rqvqa.registry import ModelCard

MODELS = (
    ModelCard(
        name="brisque",
        family="classic",
        predictor="rqvqa.families.classic.predictor:BrisquePredictor",
        description="BRISQUE with the official LIVE-trained SVR, mean over one frame per second",
        lower_better=True,
        score_range=(0.0, 100.0),
        scale="BRISQUE (LIVE DMOS-like, 0 best; can leave 0-100)",
    ),
    ModelCard(
        name="niqe",
        family="classic",
        predictor="rqvqa.families.classic.predictor:NiqePredictor",
        description="NIQE with the official pristine model, mean over one frame per second",
        lower_better=True,
        score_range=(0.0, None),
        scale="NIQE distance to the pristine model (0 best)",
    ),
)

"""FAST-VQA-B (Wu et al., ECCV 2022): Video Swin-T with gated fragment attention over 7x7 grids of 32x32
fragments.

- `network`: the backbone (weight-compatible with the official checkpoint) and the VQA head;
- `source`: RQ-VQA's 768-d per-video feature (`fastvqa` source);
- `predictor`: FAST-VQA's own score (`fastvqa` model), from the project's seeded fragments;
- `preprocess`: the fragment normalisation.
"""

from rqvqa.registry import MODELS_EXTRA, ModelCard, SourceCard, WeightsEntry

_RELEASES = (
    "https://github.com/VQAssessment/FAST-VQA-and-FasterVQA/releases/download/v2.0.0/",
    "https://github.com/TimothyHTimothy/FAST-VQA/releases/download/v2.0.0/",
)

MODELS = (
    ModelCard(
        name="fastvqa",
        family="fastvqa",
        predictor="rqvqa.families.fastvqa.predictor:FastVQAPredictor",
        description="FAST-VQA-B (Video Swin-T with fragment attention): 4 clips of 7x7 fragments, seeded",
        lower_better=False,
        score_range=(0.0, 1.0),
        scale="FAST-VQA-B score rescaled to 0-1 as the official vqa.py does (raw score in extra)",
        weights=("fastvqa-b",),
        extra=MODELS_EXTRA,
    ),
)

SOURCES = (
    SourceCard(
        name="fastvqa",
        family="fastvqa",
        source="rqvqa.families.fastvqa.source:FastVQASource",
        dim=768,
        weights=("fastvqa-b",),
    ),
)

WEIGHTS = (
    WeightsEntry(
        name="fastvqa-b",
        filename="FAST_VQA_B_1_4.pth",
        description="FAST-VQA-B ({'state_dict': 197 keys})",
        urls=tuple(base + "FAST_VQA_B_1_4.pth" for base in _RELEASES),
        pages=("https://1drv.ms/u/s!AsQt2I-RXJHQjoN0b_-BsMm-VHSGNw?e=PMKNTh",),
        size_hint="~127 MB (estimated)",
        licence="MIT (FAST-VQA repository)",
        used_by=("fastvqa source", "fastvqa predictor"),
        subdir="fastvqa",
    ),
)

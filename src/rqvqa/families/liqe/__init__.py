"""LIQE (Zhang et al., CVPR 2023): CLIP ViT-B/32 against 495 quality x scene x distortion prompts.

- `network`: the CLIP model in the OpenAI layout, the prompts, patch sampling and LIQE's score formulas;
- `source`: RQ-VQA's 495-d per-key-frame feature (`liqe` source);
- `predictor`: LIQE's own quality score per key frame, averaged (`liqe` model).
"""

from rqvqa.registry import MODELS_EXTRA, ModelCard, SourceCard, WeightsEntry

MODELS = (
    ModelCard(
        name="liqe",
        family="liqe",
        predictor="rqvqa.families.liqe.predictor:LiqePredictor",
        description="LIQE image quality (CLIP ViT-B/32, 495 prompts, 15 patches per frame), averaged",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale="LIQE quality expectation (1 = bad ... 5 = perfect), mean over one key frame per second",
        weights=("liqe",),
        extra=MODELS_EXTRA,
    ),
)

SOURCES = (
    SourceCard(
        name="liqe", family="liqe", source="rqvqa.families.liqe.source:LiqeSource", dim=495, weights=("liqe",)
    ),
)

WEIGHTS = (
    WeightsEntry(
        name="liqe",
        filename="LIQE.pt",
        description="LIQE CLIP ViT-B/32 (official, bare OpenAI-layout state dict, 302 keys)",
        pages=(
            "https://drive.google.com/file/d/1GoKwUKNR-rvX11QbKRN8MuBZw2hXKHGh/view?usp=sharing",
            "https://pan.baidu.com/s/1KHjj7T8y2H_eKE6w7HnWJA (code 2b8v)",
        ),
        size_hint="300-600 MB (estimated)",
        licence="MIT (LIQE repository)",
        used_by=("liqe source", "liqe predictor"),
        subdir="liqe",
    ),
    WeightsEntry(
        name="liqe-mix",
        filename="liqe_mix.pt",
        description="LIQE mix-set weights as re-hosted by pyiqa ({'params': {'clip_model.*'}})",
        urls=(
            "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/liqe_mix.pt",
            "https://github.com/zwx8981/IQA-PyTorch/releases/download/Weights/liqe_mix.pt",
        ),
        licence="CC BY-NC-SA 4.0 (pyiqa weights repository)",
        used_by=("liqe source (weights='liqe-mix')", "liqe predictor"),
        subdir="liqe",
        hf_repo="chaofengc/IQA-PyTorch-Weights",
    ),
)

"""Q-Align / OneAlign (Wu et al., ICML 2024): mPLUG-Owl2 (LLaMA-2 7B + ViT-L) asked to rate quality in words.

- `config`, `vision`, `llama`, `network`: mPLUG-Owl2, weight-compatible with q-future/one-align;
- `checkpoint`: reading the sharded Hugging Face checkpoint;
- `source`: RQ-VQA's 4096-d per-key-frame feature (`qalign` source) and the scoring engine `QAlign`;
- `predictor`: Q-Align's own video score (`qalign` model).
"""

from pathlib import PurePosixPath

from rqvqa.registry import MODELS_EXTRA, ModelCard, SourceCard, WeightsEntry

_ONE_ALIGN = "https://huggingface.co/q-future/one-align/resolve/main/"
_FILES = (
    ("pytorch_model-00001-of-00002.bin", "shard 1/2 (bfloat16)", "~9.99 GB"),
    ("pytorch_model-00002-of-00002.bin", "shard 2/2 (bfloat16)", "~6.42 GB"),
    ("config.json", "model configuration", ""),
    ("tokenizer.model", "LLaMA sentencepiece tokenizer", ""),
)

WEIGHTS = tuple(
    WeightsEntry(
        name=f"qalign-one-align-{k}" if k <= 2 else f"qalign-one-align-{PurePosixPath(filename).stem}",
        filename=filename,
        description=f"Q-Align q-future/one-align (mPLUG-Owl2): {what}",
        urls=(_ONE_ALIGN + filename,),
        size_hint=size_hint,
        licence="MIT (model card); LLaMA 2 licence applies",
        used_by=("qalign source",),
        subdir="one-align",
        hf_repo="q-future/one-align",
    )
    for k, (filename, what, size_hint) in enumerate(_FILES, start=1)
)
#: every file of the one-align folder (`rqvqa weights download qalign`)
ONE_ALIGN = tuple(entry.name for entry in WEIGHTS)
GROUPS = {"qalign": ONE_ALIGN}

MODELS = (
    ModelCard(
        name="qalign",
        family="qalign",
        predictor="rqvqa.families.qalign.predictor:QAlignPredictor",
        description="Q-Align / OneAlign (mPLUG-Owl2, 8.2 B): 1 frame per second in the video prompt's slot",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale="Q-Align quality, 1 (bad) to 5 (excellent)",
        weights=ONE_ALIGN,
        extra=MODELS_EXTRA,
    ),
)

SOURCES = (
    SourceCard(
        name="qalign",
        family="qalign",
        source="rqvqa.families.qalign.source:QAlignSource",
        dim=4096,
        weights=ONE_ALIGN,
    ),
)

"""RQ-VQA (the NTIRE 2024 short-form UGC winner): a Swin-B + Bottleneck-Transformer base network over the key
frames, fused with the frozen SlowFast, Q-Align, LIQE and FAST-VQA features by a two-layer head.

- `bot`, `swin_bot`, `head`, `model`: the base network, the BoT stack, the fusion head, presets;
- `remap`: official (timm 0.6.13, `module.`) checkpoints to our names; `ensemble`: the mean over members and
  the `rqvqa train` output folder;
- `preprocess`: the key-frame transform and the feature scaler, saved with trained weights;
- `predictor`: `rqvqa-kvq`, the released 10-model KVQ ensemble (or a `rqvqa train` folder).
"""

from rqvqa.families.qalign import ONE_ALIGN
from rqvqa.registry import MODELS_EXTRA, ModelCard, WeightsEntry

_LICENCE = "no LICENSE file (RQ-VQA README badge: Apache-2.0)"
_ARCHIVE = "rqvqa-kvq-ckpts"
# (split v, 1-based epoch, validation SRCC) of the 10 released KVQ models, in test.py order
_KVQ_MODELS = (
    (0, 9, "0.885692"),
    (1, 22, "0.894115"),
    (2, 25, "0.913571"),
    (3, 16, "0.901800"),
    (4, 6, "0.905095"),
    (0, 4, "0.905999"),
    (1, 19, "0.923127"),
    (2, 21, "0.924423"),
    (3, 8, "0.896798"),
    (4, 14, "0.904949"),
)


def _kvq_entry(k: int, split: int, epoch: int, srcc: str) -> WeightsEntry:
    filename = (
        "Swin_b_384_in22k_SlowFast_Fast_LLM_LIQE_FASTVQA_BoT_NTIREVideo_plcc_NR_"
        f"v{split}_epoch_{epoch}_SRCC_{srcc}.pth"
    )
    return WeightsEntry(
        name=f"rqvqa-kvq-{k}",
        filename=filename,
        description=f"RQ-VQA KVQ ensemble model {k}/10 (split v{split}, val SRCC {srcc})",
        size_hint="~379 MB (estimated)",
        licence=_LICENCE,
        used_by=("rqvqa-kvq predictor",),
        subdir="rqvqa/ckpts",
        archive=_ARCHIVE,
        member=f"ckpts/{filename}",
    )


_KVQ = tuple(_kvq_entry(k, *spec) for k, spec in enumerate(_KVQ_MODELS, start=1))

WEIGHTS = (
    WeightsEntry(
        name="rqvqa-lsvq-base",
        filename="Swin_b_384_in22k_SlowFast_Fast_LSVQ.pth",
        description="RQ-VQA base: Swin-B 384 (in22k) + SlowFast fast feature, trained on LSVQ (366 keys)",
        pages=("https://drive.google.com/file/d/1jgzVV0sil0kGhhHIV0RLr6YoDZNp7LNi",),
        size_hint="~362 MB (estimated)",
        licence=_LICENCE,
        used_by=("rqvqa model (initialisation)",),
        subdir="rqvqa",
    ),
    WeightsEntry(
        name=_ARCHIVE,
        filename="ckpts.tar",
        description="RQ-VQA KVQ ensemble archive (10 models under ckpts/)",
        urls=(
            "https://www.dropbox.com/scl/fi/b551w7pha3wni0i4do143/ckpts.tar?rlkey=5w9folofqalnoi8lspqw7og3r&dl=1",
        ),
        pages=(
            "https://www.dropbox.com/scl/fi/b551w7pha3wni0i4do143/ckpts.tar?rlkey=5w9folofqalnoi8lspqw7og3r",
            "https://drive.google.com/file/d/1mcJdgYZPybUvLfWTUtZOhktsSsPlekgv",
        ),
        size_hint="~3.8 GB (estimated)",
        licence=_LICENCE,
        used_by=("rqvqa-kvq predictor",),
        subdir="rqvqa",
    ),
    *_KVQ,
)
GROUPS = {"rqvqa-kvq": tuple(entry.name for entry in _KVQ)}

MODELS = (
    ModelCard(
        name="rqvqa-kvq",
        family="rqvqa",
        predictor="rqvqa.families.rqvqa.predictor:RQVQAKVQ",
        description="RQ-VQA (NTIRE 2024 winner): Swin-B+BoT with SlowFast, Q-Align, LIQE, FAST-VQA",
        lower_better=False,
        score_range=(1.0, 5.0),
        scale="KVQ MOS (1-5; raw regressor output, unbounded)",
        weights=(*GROUPS["rqvqa-kvq"], "slowfast-r50", "liqe", "fastvqa-b", *ONE_ALIGN),
        extra=MODELS_EXTRA,
    ),
)

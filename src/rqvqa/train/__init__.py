"""Training of the RQ-VQA regressor: the official protocol (rqvqa.md §6), resumable, on stored features.

Defaults are the values of the official README command that produced the released checkpoints (the paper's
text differs, see docs/training.md): Adam lr 1e-5, weight decay 1e-7, StepLR(step 10, gamma 0.9) stepped per
epoch, 30 epochs, batch 6 (last partial batch kept), random crop 384 for training, centre crop for
validation, best epoch by validation SRCC, N seeded group-aware 80/20 splits (seeds 10, 20, ...), ensemble =
mean of the split models' raw outputs.

Modules: `rqvqa.train.data` (datasets, collation), `rqvqa.train.loop` (configuration, checks, the loop, the
ensemble description and card); inference-side pieces live outside the training package so a predictor
imports no training code: `rqvqa.families.rqvqa.preprocess` (`FrameTransform`, `Preprocessing`, `align_rows`,
`Scaler`: the same code in training and inference) and `rqvqa.families.rqvqa.ensemble` (`Ensemble`,
`load_ensemble`). Everything is re-exported here.

Two data modes, one loop:

- full: key frames from the store's PNG cache (no video decoding) through the base network, fused with the
  stored source features (`StoreDataset`);
- head-only: one precomputed vector per video (e.g. the 60-d VIDEVAL features), regressed by the head alone
  (`ArrayDataset`, `ModelConfig.base = None`).

Output folder::

    <out>/split<i>/last.safetensors      model + optimiser tensors + RNG; JSON state in the metadata (resume)
    <out>/split<i>/best.safetensors      the selected epoch's model (our layout, config in the metadata)
    <out>/split<i>/scaler.safetensors    feature standardisation fitted on the training part (when used)
    <out>/split<i>/metrics.{csv,json}    one row per epoch
    <out>/summary.json                   per-split selected metrics, mean / median / std
    <out>/ensemble.json                  model config, members, scalers, preprocessing -> the ensemble
"""

from rqvqa.families.rqvqa.ensemble import Ensemble, load_ensemble, read_ensemble_spec
from rqvqa.families.rqvqa.preprocess import FrameTransform, Preprocessing, Scaler, align_rows
from rqvqa.train.data import (
    ArrayDataset,
    StoreDataset,
    StoredSource,
    collate,
    head_only_config,
    load_feature_matrix,
    resolve_sources,
)
from rqvqa.train.loop import (
    HEAD_ONLY_DEFAULTS,
    MIN_PART_ITEMS,
    SELECTIONS,
    TrainConfig,
    check_splits,
    init_backbone,
    load_training_state,
    model_card,
    predict,
    save_training_state,
    seed_everything,
    summarise,
    train_head_only,
    train_split,
    train_splits,
)

__all__ = [
    "HEAD_ONLY_DEFAULTS",
    "MIN_PART_ITEMS",
    "SELECTIONS",
    "ArrayDataset",
    "Ensemble",
    "FrameTransform",
    "Preprocessing",
    "Scaler",
    "StoreDataset",
    "StoredSource",
    "TrainConfig",
    "align_rows",
    "check_splits",
    "collate",
    "head_only_config",
    "init_backbone",
    "load_ensemble",
    "load_feature_matrix",
    "load_training_state",
    "model_card",
    "predict",
    "read_ensemble_spec",
    "resolve_sources",
    "save_training_state",
    "seed_everything",
    "summarise",
    "train_head_only",
    "train_split",
    "train_splits",
]

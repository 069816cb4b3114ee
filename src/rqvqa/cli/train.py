"""`rqvqa train MANIFEST --store DIR --preset P --splits N --out DIR`: the official training protocol.

Full mode reads the key-frame cache and the stored source features written by `rqvqa extract`; head-only
mode (`--features FILE`) trains the regressor on one precomputed vector per video (.mat or .npy rows in
manifest order). See docs/training.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.data.manifest import read_manifest
from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.model import PRESETS, config_from_options
from rqvqa.families.rqvqa.preprocess import FrameTransform, Preprocessing
from rqvqa.losses import LOSSES
from rqvqa.results import dumps_json
from rqvqa.store import FeatureStore
from rqvqa.train import (
    HEAD_ONLY_DEFAULTS,
    SELECTIONS,
    StoreDataset,
    TrainConfig,
    init_backbone,
    load_feature_matrix,
    resolve_sources,
    train_head_only,
    train_splits,
)
from rqvqa.video.sampling import MODES

DEFAULTS = TrainConfig()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train RQ-VQA models on N seeded group-aware splits (official protocol)",
        description="Train one model per seeded 80/20 group-aware split and write the ensemble. Defaults are "
        "the official README values: Adam lr 1e-5, weight decay 1e-7, StepLR(10, 0.9), 30 epochs, batch 6, "
        "crop 384, PLCC loss, best epoch by validation SRCC.",
    )
    p.add_argument("manifest", type=Path, help="manifest CSV (video,mos,group[,split])")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun to resume)")
    p.add_argument("--store", type=Path, help="feature store written by `rqvqa extract` (full mode)")
    p.add_argument(
        "--features", type=Path, help="head-only: per-video feature matrix (.mat feats_mat or .npy)"
    )
    p.add_argument("--preset", choices=sorted(PRESETS), help="model preset (default rqvqa)")
    p.add_argument(
        "--sources", help="instead of a preset: comma-separated stored sources, e.g. stats,slowfast"
    )
    p.add_argument("--base", choices=("bot", "avg", "none"), help="with --sources: base pooling or none")
    p.add_argument("--arch", help="backbone override (e.g. swin_tiny_test for CPU experiments)")
    p.add_argument("--splits", type=int, default=DEFAULTS.splits)
    p.add_argument("--ratio", type=float, default=DEFAULTS.ratio, help="training share of the groups")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="split i uses seed (i+1)*SEED")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"default {DEFAULTS.epochs} (head-only: {HEAD_ONLY_DEFAULTS['epochs']})",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"default {DEFAULTS.lr} (head-only: {HEAD_ONLY_DEFAULTS['lr']})",
    )
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    p.add_argument("--step-size", type=int, default=DEFAULTS.step_size, help="StepLR period in epochs")
    p.add_argument("--gamma", type=float, default=DEFAULTS.gamma, help="StepLR factor")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"default {DEFAULTS.batch_size} (head-only: {HEAD_ONLY_DEFAULTS['batch_size']})",
    )
    p.add_argument("--crop", type=int, default=DEFAULTS.crop, help="Swin input crop (224/320/384)")
    p.add_argument("--resize", type=int, help="short side before cropping (default: the crop)")
    p.add_argument("--loss", choices=sorted(LOSSES), default=DEFAULTS.loss)
    p.add_argument("--select", choices=SELECTIONS, default=DEFAULTS.select, help="epoch kept per split")
    p.add_argument(
        "--standardise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise features on the training part (default: on for head-only, off otherwise)",
    )
    p.add_argument("--mode", choices=MODES, default="official", help="key-frame cache to read")
    p.add_argument(
        "--max-frames", type=int, default=DEFAULTS.max_frames, help="key frames per video (0: all)"
    )
    p.add_argument("--init-backbone", type=Path, help="Swin from a trained base model or the LSVQ checkpoint")
    p.add_argument(
        "--init-imagenet", type=Path, help="Swin from an ImageNet checkpoint (training from scratch)"
    )
    p.add_argument(
        "--source-hash", action="append", default=[], metavar="NAME=HASH", help="pick a stored config"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    p.add_argument(
        "--grad-checkpointing",
        action="store_true",
        help="recompute Swin activations in the backward pass: half the memory per frame, ~30%% more compute",
    )
    p.add_argument("--multi-gpu", action="store_true", help="DataParallel over all visible GPUs")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The video protocol's defaults, or with --features head-only's (`HEAD_ONLY_DEFAULTS`); flags win."""
    defaults = {
        name: getattr(DEFAULTS, name) if args.features is None else HEAD_ONLY_DEFAULTS[name]
        for name in HEAD_ONLY_DEFAULTS
    }
    chosen = {
        name: defaults[name] if getattr(args, name) is None else getattr(args, name) for name in defaults
    }
    return TrainConfig(
        epochs=chosen["epochs"],
        lr=chosen["lr"],
        weight_decay=args.weight_decay,
        step_size=args.step_size,
        gamma=args.gamma,
        batch_size=chosen["batch_size"],
        crop=args.crop,
        resize=args.resize,
        loss=args.loss,
        seed=args.seed,
        splits=args.splits,
        ratio=args.ratio,
        select=args.select,
        max_frames=args.max_frames or None,
        standardise=chosen["standardise"],
        amp=args.amp,
        grad_checkpointing=args.grad_checkpointing,
        multi_gpu=args.multi_gpu,
        device=args.device,
        num_workers=args.num_workers,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    cfg = _train_config(args)
    manifest = read_manifest(args.manifest)
    if args.features is not None:
        if args.store or args.preset or args.sources or args.init_backbone or args.init_imagenet:
            raise ConfigError("--features (head-only) excludes --store, --preset, --sources and --init-*")
        try:
            matrix = load_feature_matrix(args.features, len(manifest))
        except (ValueError, TypeError, OSError) as exc:
            # an object array (pickles are never loaded), a corrupt or non-numeric file: one line, as
            # benchmark-features says it
            raise InputError(f"cannot read features ({str(exc).splitlines()[0]})", args.features) from None
        features = {args.features.stem.removesuffix("_feats").replace("-", "_") or "features": matrix}
        summary = train_head_only(manifest, features, cfg, args.out, extra={"features": str(args.features)})
        return _report(summary, args)
    if args.store is None:
        raise ConfigError("give --store (full mode) or --features (head-only)")
    sources = [s.strip() for s in (args.sources or "").split(",") if s.strip()]
    # a base network alone (`--base avg|bot`, no sources) is a model too: the base-network ablation
    preset = args.preset or (None if sources or args.base else "rqvqa")
    model_config = config_from_options(preset, sources or None, args.base, args.arch, args.crop)
    store = FeatureStore(args.store)
    hashes = dict(item.split("=", 1) for item in args.source_hash if "=" in item)
    stored = resolve_sources(store, model_config.source_names, hashes)
    init = None
    if args.init_backbone is not None and args.init_imagenet is not None:
        raise ConfigError("give --init-backbone or --init-imagenet, not both")
    if args.init_backbone is not None:
        init = lambda model: init_backbone(model, args.init_backbone)  # noqa: E731
    elif args.init_imagenet is not None:
        from rqvqa.families.rqvqa.swin_bot import load_imagenet_weights

        init = lambda model: load_imagenet_weights(model.base.swin, args.init_imagenet)  # noqa: E731

    preprocessing = Preprocessing(args.mode, FrameTransform(resize=cfg.resize_to, crop=cfg.crop))

    def make_dataset(rows, train, seed):
        return StoreDataset(
            store,
            manifest,
            rows,
            stored,
            frames=model_config.needs_frames,
            transform=preprocessing.frames,
            train=train,
            seed=seed,
            max_frames=cfg.max_frames,
            mode=args.mode,
        )

    summary = train_splits(
        model_config,
        manifest,
        make_dataset,
        cfg,
        args.out,
        init,
        extra={"store": str(args.store), "sources": {s.name: s.config_hash for s in stored}},
        preprocessing=preprocessing,
    )
    return _report(summary, args)


def _report(summary: dict, args: argparse.Namespace) -> int:
    if args.json:
        print(dumps_json(summary, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(summary['splits'])} splits -> {args.out}")
    for column in ("split", "epoch", "SRCC", "PLCC", "KRCC", "RMSE"):
        table.add_column(column, justify="right")
    for row in summary["splits"]:
        table.add_row(
            row["split"], str(row["epoch"]), *(f"{row[k]:.4f}" for k in ("SRCC", "PLCC", "KRCC", "RMSE"))
        )
    for stat in ("mean", "median", "std"):
        table.add_row(stat, "", *(f"{summary[k][stat]:.4f}" for k in ("SRCC", "PLCC", "KRCC", "RMSE")))
    console = Console()
    console.print(table)
    for row in summary["splits"]:
        if row.get("fit_direction") == "decreasing":
            console.print(
                f"note: split {row['split']}: the fitted logistic is decreasing: it reversed the ranking "
                f"(SRCC {row['SRCC']:.4f} on the raw predictions); PLCC {row['PLCC']:.4f} and RMSE are those "
                "of the reversed predictions (official figures, kept)"
            )
    return 0

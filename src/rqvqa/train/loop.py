"""The training loop of the official protocol: configuration and its checks, one model per split (resumable),
the ensemble description with its model card."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint, save_safetensors
from rqvqa.data.manifest import Manifest
from rqvqa.data.splits import Split, make_splits
from rqvqa.errors import ConfigError, InputError, WeightsError
from rqvqa.families.rqvqa.model import RQVQA, ModelConfig
from rqvqa.families.rqvqa.preprocess import Preprocessing, Scaler
from rqvqa.files import atomic_write
from rqvqa.losses import get_loss
from rqvqa.metrics import performance
from rqvqa.results import dumps_json
from rqvqa.train.data import ArrayDataset, collate, head_only_config

SELECTIONS = ("best", "last")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 1e-5
    weight_decay: float = 1e-7
    step_size: int = 10
    gamma: float = 0.9
    batch_size: int = 6
    #: validation batch size; the model is in eval mode (BatchNorm running stats), so it does not change
    #: the scores (the official code uses 1)
    eval_batch_size: int = 8
    #: Swin input crop; frames are first resized so their short side is `resize` (default: the crop)
    crop: int = 384
    resize: int | None = None
    loss: str = "plcc"
    #: the official `random_seed`: split i uses seed (i + 1) * seed
    seed: int = 10
    splits: int = 10
    ratio: float = 0.8
    #: "best": epoch with the best validation SRCC (official); "last": the final epoch
    select: str = "best"
    #: key-frame rows per video (the official loaders read 8); None reads all stored rows
    max_frames: int | None = 8
    #: standardise source features with the training part's mean/std (head-only runs; not official)
    standardise: bool = False
    amp: bool = False
    #: recompute the Swin's activations in the backward pass (timm's gradient checkpointing): about half the
    #: memory per frame for about 30 % more compute
    grad_checkpointing: bool = False
    multi_gpu: bool = False
    device: str = "cpu"
    num_workers: int = 0
    #: mapping before the validation PLCC/RMSE (the official `performance_fit` uses a 4-parameter logistic)
    fit: str = "logistic4"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise ConfigError(
                f"unknown epoch selection {self.select!r}; choose one of {', '.join(SELECTIONS)}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.splits < 1:
            raise ConfigError("epochs, batch size and number of splits must be at least 1")
        get_loss(self.loss)

    @property
    def resize_to(self) -> int:
        return self.resize or self.crop


#: head-only training (`train --features`): one vector per video through a small MLP learns much faster than
#: the video protocol's fine-tuning of a Swin-B, and needs standardised inputs (docs/training.md: VIDEVAL on
#: KoNViD-1k, SRCC 0.73-0.76 with these settings against 0.55 with the video protocol's lr 1e-5 / 30 epochs)
HEAD_ONLY_DEFAULTS = {"lr": 1e-3, "epochs": 50, "batch_size": 32, "standardise": True}
#: fewest items a split part may have: validation correlations need two, and so does a PLCC-loss batch
MIN_PART_ITEMS = 2


#: activation memory of one training frame (key frame at 384) through the official Swin-B + BoT, fp32, MB:
#: measured on the CPU as the peak-RSS slope over frames per batch (docs/training.md, "Memory")
FRAME_ACTIVATION_MB = {False: 956.0, True: 501.0}


def training_memory_mb(model: RQVQA, cfg: TrainConfig, videos: int | None = None) -> float | None:
    """Estimated peak memory of training `model` with `cfg` on `videos` training videos (weights, gradients
    and Adam moments, plus the activations of one batch of frames), or None for base networks it was not
    measured on."""
    from rqvqa.families.rqvqa.swin_bot import BaseNetConfig

    if model.config.base is None or model.config.base.arch != BaseNetConfig().arch:
        return None
    state = 4 * 4 * sum(p.numel() for p in model.parameters()) / 2**20  # fp32 weights, grads, Adam m and v
    frames = min(cfg.batch_size, videos or cfg.batch_size) * (cfg.max_frames or 8)
    scale = (cfg.crop / 384) ** 2  # fp32 figures: with --amp this over-estimates
    return state + frames * FRAME_ACTIVATION_MB[cfg.grad_checkpointing] * scale


def available_memory_mb(device: torch.device) -> float | None:
    """Free memory of the device: CUDA's free memory, or the host's MemAvailable (Linux); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model: RQVQA, cfg: TrainConfig, device: torch.device, videos: int | None = None) -> None:
    """Refuse a set-up that will not fit, before the first epoch, saying what would."""
    need, free = training_memory_mb(model, cfg, videos), available_memory_mb(device)
    if need is None or free is None or need <= free:
        return
    frames = min(cfg.batch_size, videos or cfg.batch_size) * (cfg.max_frames or 8)
    per_frame = FRAME_ACTIVATION_MB[cfg.grad_checkpointing] * (cfg.crop / 384) ** 2
    fits = max(0, int((free - (need - frames * per_frame)) // (per_frame * (cfg.max_frames or 8))))
    hint = "" if cfg.grad_checkpointing else ", or add --grad-checkpointing"
    raise ConfigError(
        f"training will not fit: about {need / 1024:.1f} GB needed ({frames} frames per batch at "
        f"~{per_frame:.0f} MB each, plus weights and Adam state) but {free / 1024:.1f} GB are free on "
        f"{device}; use --batch-size {fits} or less{hint}, or a GPU with at least {need / 1024:.0f} GB"
        if fits
        else f"training will not fit: about {need / 1024:.1f} GB needed but {free / 1024:.1f} GB are free on "
        f"{device}, not even for one video per batch{hint}; use a GPU with at least {need / 1024:.0f} GB"
    )


def check_splits(splits: Sequence[Split], n_items: int) -> None:
    """Refuse, before any training, splits whose parts are too small to train on or to validate."""
    if n_items < 2 * MIN_PART_ITEMS:
        raise ConfigError(
            f"the manifest has {n_items} videos; training needs at least {2 * MIN_PART_ITEMS} "
            f"({MIN_PART_ITEMS} to train on and {MIN_PART_ITEMS} to validate each split)"
        )
    for split in splits:
        for part, rows in (("training", split.train), ("validation", split.test)):
            if len(rows) < MIN_PART_ITEMS:
                raise ConfigError(
                    f"split {split.name} has {len(rows)} {part} video(s) of {n_items}; at least "
                    f"{MIN_PART_ITEMS} are needed (more videos or groups, or another --ratio)"
                )


# ------------------------------------------------------------------------------------------------ state


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask cuDNN for deterministic kernels (official `random_seed`)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, info: dict[str, Any]
) -> None:
    """Model, optimiser and RNG tensors in one safetensors file; everything else as JSON in its metadata."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    opt_meta: dict[str, dict[str, Any]] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                opt_meta.setdefault(str(pid), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    meta = {
        "info": info,
        "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_meta},
        "scheduler": scheduler.state_dict(),
    }
    atomic_write(path, lambda tmp: save_safetensors(tensors, tmp, metadata={"state": dumps_json(meta)}))


def load_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["state"])
    except Exception as exc:  # corrupt file or missing metadata: safetensors raises several types
        raise WeightsError(f"not a training state file ({exc})", path) from exc
    tensors = read_checkpoint(path)
    load_strict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, scalars in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(scalars)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return meta["info"]


def init_backbone(model: RQVQA, path: str | Path) -> None:
    """Stage two of the paper: initialise the Swin of `model` from a trained `base` model (ours, safetensors)
    or from the official LSVQ-pretrained checkpoint; the rest of the model keeps its fresh initialisation."""
    from rqvqa.families.rqvqa.remap import is_official_layout, load_lsvq_backbone

    if model.base is None:
        raise ConfigError("a head-only model has no backbone to initialise")
    state = extract_state_dict(read_checkpoint(path))
    if is_official_layout(state):
        load_lsvq_backbone(model, state)
        return
    swin = {k[len("base.swin.") :]: v for k, v in state.items() if k.startswith("base.swin.")}
    if not swin:
        raise WeightsError("no base.swin.* tensors: not a model trained with rqvqa", path)
    load_strict(model.base.swin, swin, path)


# ------------------------------------------------------------------------------------------------ loop


def _device(cfg: TrainConfig) -> torch.device:
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {cfg.device} requested but CUDA is not available")
    return device


def _forward(net: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    frames = batch["frames"].to(device, non_blocking=True) if batch["frames"] is not None else None
    feats = {k: v.to(device, non_blocking=True) for k, v in batch["features"].items()}
    mask = batch["mask"].to(device) if batch["mask"] is not None else None
    _, score = net(frames, feats, mask)
    return score


def predict(
    net: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Raw video scores and labels over a loader, in loader order."""
    net.eval()
    scores, labels = [], []
    with torch.no_grad(), torch.autocast(device.type, enabled=amp and device.type == "cuda"):
        for batch in loader:
            scores.append(_forward(net, batch, device).float().cpu())
            labels.append(batch["mos"])
    return torch.cat(scores).numpy().astype(np.float64), torch.cat(labels).numpy().astype(np.float64)


def _metrics(pred: np.ndarray, mos: np.ndarray, fit: str) -> dict[str, Any]:
    """The four metrics, and the fit's direction (`rqvqa.metrics.fit_direction`: "decreasing" when the fit
    reversed the ranking, which the printed table then says)."""
    report = performance(pred, mos, fit=fit)
    return {
        **{k: float(report[k]) for k in ("SRCC", "PLCC", "KRCC", "RMSE")},
        "fit_direction": report["fit_direction"],
    }


def train_split(
    model_config: ModelConfig,
    train_set: Dataset,
    val_set: Dataset,
    cfg: TrainConfig,
    out_dir: str | Path,
    seed: int,
    init: Callable[[RQVQA], None] | None = None,
) -> dict[str, Any]:
    """Train one split; resumes from `out_dir/last.safetensors` when present. Returns the selected epoch's
    validation metrics and the path of its model."""
    from tqdm import tqdm

    from rqvqa.families.rqvqa.remap import save_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg)
    seed_everything(seed)
    if cfg.standardise:
        scaler = Scaler.fit(train_set.raw_features())
        scaler.save(out / "scaler.safetensors")
        train_set.scaler = val_set.scaler = scaler
    model = RQVQA(model_config)
    if cfg.grad_checkpointing and model.base is not None:
        model.base.swin.set_grad_checkpointing(True)
    check_memory(model, cfg, device, len(train_set))
    if init is not None:
        init(model)
    model.to(device)
    net: nn.Module = model
    if cfg.multi_gpu and device.type == "cuda" and torch.cuda.device_count() > 1:
        net = nn.DataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    scaler_amp = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    criterion = get_loss(cfg.loss)
    info: dict[str, Any] = {"epoch": 0, "history": [], "best": None, "seed": seed}
    state_path = out / "last.safetensors"
    if state_path.is_file():
        info = load_training_state(state_path, model, optimizer, scheduler)
    val_loader = DataLoader(
        val_set,
        batch_size=cfg.eval_batch_size,
        shuffle=False,
        num_workers=cfg.num_workers,
        collate_fn=collate,
    )
    pin = device.type == "cuda"
    for epoch in range(info["epoch"], cfg.epochs):
        started = time.perf_counter()
        train_set.epoch = epoch
        order = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(
            train_set,
            batch_size=cfg.batch_size,
            shuffle=True,
            generator=order,
            num_workers=cfg.num_workers,
            collate_fn=collate,
            pin_memory=pin,
        )
        net.train()
        losses = []
        bar = tqdm(
            loader, desc=f"{out.name} epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not cfg.progress
        )
        for batch in bar:
            with torch.autocast(device.type, enabled=cfg.amp and device.type == "cuda"):
                score = _forward(net, batch, device)
            loss = criterion(score.float(), batch["mos"].to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler_amp.scale(loss).backward()
            scaler_amp.step(optimizer)
            scaler_amp.update()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        pred, mos = predict(net, val_loader, device, cfg.amp)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": float(np.mean(losses)),
            **_metrics(pred, mos, cfg.fit),
        }
        row["seconds"] = round(time.perf_counter() - started, 3)
        info["history"].append(row)
        improved = info["best"] is None or (
            cfg.select == "last" or (math.isfinite(row["SRCC"]) and row["SRCC"] > info["best"]["SRCC"])
        )
        if improved:
            info["best"] = dict(row)
            meta = {"epoch": str(epoch + 1), "SRCC": f"{row['SRCC']:.6f}", "seed": str(seed)}
            atomic_write(
                out / "best.safetensors", lambda tmp, meta=meta: save_model(model, tmp, metadata=meta)
            )
            _write_text(
                out / "best_predictions.json", dumps_json({"pred": pred.tolist(), "mos": mos.tolist()})
            )
        info["epoch"] = epoch + 1
        save_training_state(state_path, model, optimizer, scheduler, info)
        _write_metrics(out, info["history"])
    return {"model": str(out / "best.safetensors"), **info["best"]}


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    _write_text(out / "metrics.json", dumps_json(history, indent=1))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    _write_text(out / "metrics.csv", buffer.getvalue())


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, median and std over splits of the selected epochs' metrics (what the official code reports)."""
    out: dict[str, Any] = {"splits": results}
    for key in ("SRCC", "PLCC", "KRCC", "RMSE"):
        values = np.array([r[key] for r in results], dtype=np.float64)
        out[key] = {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "std": float(values.std()),
        }
    return out


def train_splits(
    model_config: ModelConfig,
    manifest: Manifest,
    make_dataset: Callable[[Sequence[int], bool, int], Dataset],
    cfg: TrainConfig,
    out_dir: str | Path,
    init: Callable[[RQVQA], None] | None = None,
    splits: Sequence[Split] | None = None,
    extra: Mapping[str, Any] | None = None,
    preprocessing: Preprocessing | None = None,
) -> dict[str, Any]:
    """Train one model per split; `make_dataset(indices, train, seed)` builds the data of one part.

    Writes summary.json and ensemble.json (members = the selected model of each split, and the
    `preprocessing` their inputs went through, which prediction applies again)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = list(splits) if splits is not None else make_splits(manifest, cfg.splits, cfg.seed, cfg.ratio)
    check_splits(splits, len(manifest))
    # every part's data is built (and so checked: stored features, key frames) before the first epoch
    seeds = [split.seed if split.seed is not None else cfg.seed for split in splits]
    parts = [
        (make_dataset(split.train, True, seed), make_dataset(split.test, False, seed))
        for split, seed in zip(splits, seeds, strict=True)
    ]
    results = []
    for i, (split, seed, (train_set, val_set)) in enumerate(zip(splits, seeds, parts, strict=True)):
        result = train_split(model_config, train_set, val_set, cfg, out / f"split{i}", seed, init)
        results.append({"split": split.name, "seed": seed, **result})
    summary = summarise(results)
    _write_text(out / "summary.json", dumps_json(summary, indent=1))
    ensemble = {
        "model": model_config.to_dict(),
        "members": [f"split{i}/best.safetensors" for i in range(len(splits))],
        "scalers": [f"split{i}/scaler.safetensors" for i in range(len(splits))] if cfg.standardise else None,
        "preprocessing": (preprocessing or Preprocessing()).to_dict(),
        "train": dataclasses.asdict(cfg),
        **dict(extra or {}),
    }
    ensemble["card"] = model_card(out, manifest, model_config, cfg, summary, extra)
    _write_text(out / "ensemble.json", dumps_json(ensemble, indent=1))
    return summary


def model_card(
    out: Path,
    manifest: Manifest,
    model_config: ModelConfig,
    cfg: TrainConfig,
    summary: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What `rqvqa predict` shows for a trained ensemble: its own name, label scale, data, split protocol and
    validation metrics (it is not the released `rqvqa-kvq`, and its outputs are on its labels' scale)."""
    mos = np.asarray(manifest.mos, dtype=np.float64)
    kind = "head-only" if model_config.base is None else "full"
    return {
        "name": f"rqvqa-trained:{out.resolve().name}",
        "scale": f"training labels ({mos.min():.4g} to {mos.max():.4g}; raw regressor output, unbounded)",
        "score_range": [float(mos.min()), float(mos.max())],
        "dataset": str(manifest.base_dir),
        "videos": len(manifest),
        "training": f"{kind}, sources {', '.join(model_config.source_names) or 'none'}",
        "splits": f"{len(summary['splits'])} seeded group-aware splits, ratio {cfg.ratio}, seed {cfg.seed}",
        "metrics": {k: round(summary[k]["mean"], 4) for k in ("SRCC", "PLCC", "KRCC", "RMSE")},
        **({"features": extra["features"]} if extra and "features" in extra else {}),
    }


def train_head_only(
    manifest: Manifest,
    features: Mapping[str, np.ndarray],
    cfg: TrainConfig,
    out_dir: str | Path,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Head-only training on per-video feature matrices {name: (videos, dim)} in manifest order."""
    for name, matrix in features.items():
        if matrix.shape[0] != len(manifest):
            raise InputError(f"feature {name!r} has {matrix.shape[0]} rows for {len(manifest)} videos")
    return train_splits(
        head_only_config(features),
        manifest,
        lambda rows, train, seed: ArrayDataset(features, manifest.mos, rows),
        cfg,
        out_dir,
        extra=extra,
    )

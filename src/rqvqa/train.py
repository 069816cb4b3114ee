"""Training of the RQ-VQA regressor: the official protocol (rqvqa.md §6), resumable, on stored features.

Defaults are the values of the official README command that produced the released checkpoints (the paper's
text differs, see docs/training.md): Adam lr 1e-5, weight decay 1e-7, StepLR(step 10, gamma 0.9) stepped per
epoch, 30 epochs, batch 6 (last partial batch kept), random crop 384 for training, centre crop for
validation, best epoch by validation SRCC, N seeded group-aware 80/20 splits (seeds 10, 20, ...), ensemble =
mean of the split models' raw outputs.

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
    <out>/ensemble.json                  model config, members, sources -> the ensemble for prediction
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import tempfile
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
from rqvqa.losses import get_loss
from rqvqa.metrics import performance
from rqvqa.model import RQVQA, ModelConfig
from rqvqa.store import FeatureStore, keyframe_tag, video_id

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


# ------------------------------------------------------------------------------------------------ data


def load_feature_matrix(path: str | Path, rows: int | None = None) -> np.ndarray:
    """A (videos, dim) matrix from .npy or .mat (key `feats_mat`, else the only 2-D numeric array)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("feature file not found", path)
    if path.suffix == ".npy":
        matrix = np.load(path, allow_pickle=False)
    elif path.suffix == ".mat":
        from scipy.io import loadmat

        data = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray) and v.ndim == 2}
        key = "feats_mat" if "feats_mat" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
        if key is None:
            raise InputError(f"no feats_mat and not exactly one 2-D array (found {', '.join(data)})", path)
        matrix = arrays[key]
    else:
        raise InputError("feature file must be .npy or .mat", path)
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise InputError(f"expected a (videos, dim) matrix, got shape {matrix.shape}", path)
    if rows is not None and matrix.shape[0] != rows:
        raise InputError(f"{matrix.shape[0]} feature rows for {rows} manifest rows", path)
    return matrix


@dataclass
class Scaler:
    """Per-source feature standardisation; NaNs (missing values in published feature files) become 0 after
    standardising, i.e. the training mean."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def fit(cls, features: Mapping[str, Sequence[np.ndarray]]) -> Scaler:
        mean, std = {}, {}
        for name, arrays in features.items():
            rows = np.concatenate([np.atleast_2d(a) for a in arrays]).astype(np.float64)
            mean[name] = np.nan_to_num(np.nanmean(rows, axis=0)).astype(np.float32)
            sd = np.nan_to_num(np.nanstd(rows, axis=0))
            std[name] = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        return cls(mean, std)

    def apply(self, name: str, array: np.ndarray) -> np.ndarray:
        if name not in self.mean:
            return array
        return np.nan_to_num((array - self.mean[name]) / self.std[name]).astype(np.float32)

    def save(self, path: Path) -> None:
        tensors = {f"{n}.mean": torch.from_numpy(m) for n, m in self.mean.items()}
        tensors |= {f"{n}.std": torch.from_numpy(s) for n, s in self.std.items()}
        _atomic(path, lambda tmp: save_safetensors(tensors, tmp))

    @classmethod
    def load(cls, path: Path) -> Scaler:
        state = read_checkpoint(path)
        names = {k.rsplit(".", 1)[0] for k in state}
        return cls(
            {n: state[f"{n}.mean"].numpy() for n in names}, {n: state[f"{n}.std"].numpy() for n in names}
        )


class ArrayDataset(Dataset):
    """Head-only items: one per-video vector per source, no frames."""

    def __init__(self, features: Mapping[str, np.ndarray], mos: np.ndarray, indices: Sequence[int]):
        self.features = {k: np.asarray(v, dtype=np.float32) for k, v in features.items()}
        self.mos = np.asarray(mos, dtype=np.float32)
        self.indices = list(indices)
        self.scaler: Scaler | None = None
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def raw_features(self) -> dict[str, list[np.ndarray]]:
        return {name: [m[i] for i in self.indices] for name, m in self.features.items()}

    def __getitem__(self, k: int) -> dict[str, Any]:
        i = self.indices[k]
        feats = {}
        for name, matrix in self.features.items():
            x = matrix[i]
            feats[name] = torch.from_numpy(self.scaler.apply(name, x) if self.scaler else np.nan_to_num(x))
        return {"frames": None, "features": feats, "mos": float(self.mos[i]), "index": i}

    def __getitems__(self, ks: Sequence[int]) -> dict[str, Any]:
        """A whole collated batch at once (DataLoader's batched fetch): the per-item path dominates the time
        of a head-only run otherwise."""
        rows = [self.indices[k] for k in ks]
        feats = {}
        for name, matrix in self.features.items():
            x = matrix[rows]
            feats[name] = torch.from_numpy(self.scaler.apply(name, x) if self.scaler else np.nan_to_num(x))
        mos = torch.from_numpy(self.mos[rows])
        return {"frames": None, "features": feats, "mos": mos, "index": rows, "mask": None}


def head_only_config(features: Mapping[str, np.ndarray]) -> ModelConfig:
    """A model without base network over per-video feature matrices {name: (videos, dim)}."""
    from rqvqa.model import parse_sources

    specs = parse_sources([f"{name}:{matrix.shape[1]}" for name, matrix in features.items()])
    return ModelConfig(sources=specs, base=None, name="head-only")


@dataclass(frozen=True)
class StoredSource:
    """A source as the training reads it from the store."""

    name: str
    config_hash: str


def resolve_sources(store: FeatureStore, names: Sequence[str], given: Mapping[str, str] | None = None):
    """(name, config hash) of each source: the hash given, else the only one the store holds for it."""
    given = dict(given or {})
    out = []
    for name in names:
        if name in given:
            out.append(StoredSource(name, given[name]))
            continue
        hashes = store.hashes(name)
        if len(hashes) != 1:
            what = "no entries" if not hashes else f"several configurations ({', '.join(hashes)})"
            raise ConfigError(
                f"store {store.root} has {what} for source {name!r}; run `rqvqa extract` or pick a hash"
            )
        out.append(StoredSource(name, hashes[0]))
    return out


class StoreDataset(Dataset):
    """Full-mode items read from a feature store: cropped key frames and per-frame / per-video features."""

    def __init__(
        self,
        store: FeatureStore,
        manifest: Manifest,
        indices: Sequence[int],
        sources: Sequence[StoredSource],
        frames: bool,
        crop: int,
        resize: int,
        train: bool,
        seed: int = 0,
        max_frames: int | None = 8,
        mode: str = "official",
    ):
        self.store, self.manifest, self.indices = store, manifest, list(indices)
        self.sources, self.frames, self.train = list(sources), frames, train
        self.crop, self.resize, self.seed, self.max_frames = crop, resize, seed, max_frames
        self.tag = keyframe_tag(mode)
        self.scaler: Scaler | None = None
        #: set by the training loop before each epoch: the random crops depend on (seed, epoch, video)
        self.epoch = 0
        self.ids = [video_id(manifest[i].video, manifest.base_dir) for i in self.indices]
        self._check_present()

    def _check_present(self) -> None:
        for src in self.sources:
            missing = self.store.missing(src.name, src.config_hash, self.ids)
            if missing:
                raise InputError(
                    f"{len(missing)} videos have no stored {src.name} features (first: {missing[0]}); "
                    "run `rqvqa extract`",
                    self.store.root,
                )
        if self.frames:
            missing = [v for v in self.ids if not self.store.has_keyframes(v, self.tag)]
            if missing:
                raise InputError(
                    f"{len(missing)} videos have no cached key frames (first: {missing[0]}); "
                    "run `rqvqa extract`",
                    self.store.root,
                )

    def __len__(self) -> int:
        return len(self.indices)

    def raw_features(self) -> dict[str, list[np.ndarray]]:
        return {s.name: self.store.load_many(s.name, s.config_hash, self.ids) for s in self.sources}

    def _frames(self, k: int) -> torch.Tensor:
        from PIL import Image

        paths = self.store.keyframe_paths(self.ids[k], self.tag)[: self.max_frames]
        rgb = []
        for p in paths:
            with Image.open(p) as image:
                rgb.append(np.asarray(image.convert("RGB")))
        rng = np.random.default_rng([self.seed, self.epoch, self.indices[k]])
        return prepare_frames(rgb, self.crop, self.resize, self.train, rng)

    def __getitem__(self, k: int) -> dict[str, Any]:
        i = self.indices[k]
        frames = self._frames(k) if self.frames else None
        arrays = {s.name: self.store.load(s.name, s.config_hash, self.ids[k]) for s in self.sources}
        if frames is not None:
            rows = frames.shape[0]
        else:
            per_frame = [a.shape[0] for a in arrays.values() if a.ndim == 2]
            rows = min(per_frame) if per_frame else 1
            rows = min(rows, self.max_frames) if self.max_frames else rows
        feats = {}
        for name, array in arrays.items():
            array = align_rows(array, rows)
            feats[name] = torch.from_numpy(self.scaler.apply(name, array) if self.scaler else array)
        return {"frames": frames, "features": feats, "mos": float(self.manifest[i].mos), "index": i}


def prepare_frames(
    frames: Sequence[np.ndarray],
    crop: int,
    resize: int,
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """The official Swin input: PIL Resize(resize) on the short side (bilinear; a no-op on the cached 384
    frames when resize is 384), RandomCrop(crop) when training else CenterCrop(crop), ImageNet normalisation.
    uint8 RGB (H, W, 3) frames -> (F, 3, crop, crop) float32."""
    from PIL import Image

    from rqvqa.nets.swin_bot import normalize_frames
    from rqvqa.video.sampling import center_crop, random_crop

    crops = []
    for rgb in frames:
        h, w = rgb.shape[:2]
        if min(h, w) != resize:
            size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
        if train:
            crops.append(random_crop(rgb, crop, rng if rng is not None else np.random.default_rng()))
        else:
            crops.append(center_crop(rgb, crop))
    return normalize_frames(np.stack(crops))


def align_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """First `rows` rows of a per-frame array, repeating the last row when it has fewer (official padding);
    per-video vectors are returned unchanged."""
    if array.ndim == 1:
        return array
    if array.shape[0] >= rows:
        return array[:rows]
    return np.concatenate([array, np.repeat(array[-1:], rows - array.shape[0], axis=0)])


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items; videos with fewer frame rows are zero-padded and masked out of the frame mean."""
    if isinstance(items, dict):  # already collated by a dataset's __getitems__
        return items
    rows = [_rows(item) for item in items]
    n = max(rows)
    mask = torch.tensor([[f < r for f in range(n)] for r in rows])
    frames = None
    if items[0]["frames"] is not None:
        frames = torch.stack([_pad(item["frames"], n) for item in items])
    feats = {}
    for name in items[0]["features"]:
        xs = [item["features"][name] for item in items]
        feats[name] = torch.stack([_pad(x, n) for x in xs]) if xs[0].dim() == 2 else torch.stack(xs)
    return {
        "frames": frames,
        "features": feats,
        "mos": torch.tensor([item["mos"] for item in items], dtype=torch.float32),
        "index": [item["index"] for item in items],
        "mask": None if all(r == n for r in rows) else mask,
    }


def _rows(item: dict[str, Any]) -> int:
    if item["frames"] is not None:
        return int(item["frames"].shape[0])
    per_frame = [x.shape[0] for x in item["features"].values() if x.dim() == 2]
    return int(per_frame[0]) if per_frame else 1


def _pad(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[0] == n:
        return x
    return torch.cat([x, x.new_zeros((n - x.shape[0], *x.shape[1:]))])


# ------------------------------------------------------------------------------------------------ state


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask cuDNN for deterministic kernels (official `random_seed`)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """write(tmp) then move the finished file into place, so a kill never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text))


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
    _atomic(path, lambda tmp: save_safetensors(tensors, tmp, metadata={"state": json.dumps(meta)}))


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
    from rqvqa.nets.remap import is_official_layout, load_lsvq_backbone

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


def _metrics(pred: np.ndarray, mos: np.ndarray, fit: str) -> dict[str, float]:
    report = performance(pred, mos, fit=fit)
    return {k: float(report[k]) for k in ("SRCC", "PLCC", "KRCC", "RMSE")}


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

    from rqvqa.nets.remap import save_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg)
    seed_everything(seed)
    if cfg.standardise:
        scaler = Scaler.fit(train_set.raw_features())
        scaler.save(out / "scaler.safetensors")
        train_set.scaler = val_set.scaler = scaler
    model = RQVQA(model_config)
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
            _atomic(out / "best.safetensors", lambda tmp, meta=meta: save_model(model, tmp, metadata=meta))
            _write_text(
                out / "best_predictions.json", json.dumps({"pred": pred.tolist(), "mos": mos.tolist()})
            )
        info["epoch"] = epoch + 1
        save_training_state(state_path, model, optimizer, scheduler, info)
        _write_metrics(out, info["history"])
    return {"model": str(out / "best.safetensors"), **info["best"]}


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    _write_text(out / "metrics.json", json.dumps(history, indent=1))
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
) -> dict[str, Any]:
    """Train one model per split; `make_dataset(indices, train, seed)` builds the data of one part.

    Writes summary.json and ensemble.json (members = the selected model of each split)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = list(splits) if splits is not None else make_splits(manifest, cfg.splits, cfg.seed, cfg.ratio)
    results = []
    for i, split in enumerate(splits):
        seed = split.seed if split.seed is not None else cfg.seed
        result = train_split(
            model_config,
            make_dataset(split.train, True, seed),
            make_dataset(split.test, False, seed),
            cfg,
            out / f"split{i}",
            seed,
            init,
        )
        results.append({"split": split.name, "seed": seed, **result})
    summary = summarise(results)
    _write_text(out / "summary.json", json.dumps(summary, indent=1))
    ensemble = {
        "model": model_config.to_dict(),
        "members": [f"split{i}/best.safetensors" for i in range(len(splits))],
        "scalers": [f"split{i}/scaler.safetensors" for i in range(len(splits))] if cfg.standardise else None,
        "train": dataclasses.asdict(cfg),
        **dict(extra or {}),
    }
    _write_text(out / "ensemble.json", json.dumps(ensemble, indent=1))
    return summary


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


# ------------------------------------------------------------------------------------------------ ensemble


class Ensemble(nn.Module):
    """Mean of the members' raw outputs (frame scores and video scores), as the official test.py."""

    def __init__(self, members: Sequence[RQVQA], scalers: Sequence[Scaler | None] | None = None):
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        self.members = nn.ModuleList(members)
        #: per-member feature standardisation (fitted on that member's training part), or None
        self.scalers = list(scalers) if scalers is not None else [None] * len(members)

    def forward(
        self,
        frames: torch.Tensor | None,
        features: Mapping[str, torch.Tensor],
        frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [
            m(frames, _standardise(features, scaler), frame_mask)
            for m, scaler in zip(self.members, self.scalers, strict=True)
        ]
        frame_scores = torch.stack([o[0] for o in outputs]).mean(dim=0)
        return frame_scores, torch.stack([o[1] for o in outputs]).mean(dim=0)


def _standardise(features: Mapping[str, torch.Tensor], scaler: Scaler | None) -> Mapping[str, torch.Tensor]:
    if scaler is None:
        return features
    out = dict(features)
    for name, x in features.items():
        if name in scaler.mean:
            mean = torch.as_tensor(scaler.mean[name], device=x.device, dtype=x.dtype)
            std = torch.as_tensor(scaler.std[name], device=x.device, dtype=x.dtype)
            out[name] = torch.nan_to_num((x - mean) / std)
    return out


def load_ensemble(folder: str | Path, device: str | torch.device = "cpu") -> tuple[Ensemble, dict[str, Any]]:
    """The ensemble written by `train_splits` (our safetensors members), and its ensemble.json."""
    from rqvqa.nets.remap import load_weights

    folder = Path(folder)
    path = folder / "ensemble.json"
    if not path.is_file():
        raise InputError("no ensemble.json (not a training output folder)", folder)
    spec = json.loads(path.read_text())
    config = ModelConfig.from_dict(spec["model"])
    members = []
    for member in spec["members"]:
        model = RQVQA(config)
        load_weights(model, folder / member)
        members.append(model.eval())
    scalers = [Scaler.load(folder / p) for p in spec["scalers"]] if spec.get("scalers") else None
    return Ensemble(members, scalers).to(device), spec

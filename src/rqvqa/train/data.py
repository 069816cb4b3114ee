"""Training data: per-video feature matrices (head-only) and the feature store + key-frame cache (full mode),
as torch datasets, and the batch collation with frame masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rqvqa.data.manifest import Manifest
from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.model import ModelConfig
from rqvqa.families.rqvqa.preprocess import FrameTransform, Scaler, align_rows
from rqvqa.store import FeatureStore, keyframe_tag, video_id


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
    from rqvqa.families.rqvqa.model import parse_sources

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
        transform: FrameTransform,
        train: bool,
        seed: int = 0,
        max_frames: int | None = 8,
        mode: str = "official",
    ):
        self.store, self.manifest, self.indices = store, manifest, list(indices)
        self.sources, self.frames, self.train = list(sources), frames, train
        self.transform, self.seed, self.max_frames = transform, seed, max_frames
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
        return self.transform(rgb, self.train, rng)

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

"""Model inputs shared by inference and training: the base network's key-frame tensor, per-frame feature rows
aligned to the key frames, and the per-source feature standardisation a trained ensemble applies.

Inference (`rqvqa.kvq_predictor`, `rqvqa.ensemble`) imports this module without any training code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rqvqa.checkpoints import atomic_write, read_checkpoint, save_safetensors


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
        atomic_write(path, lambda tmp: save_safetensors(tensors, tmp))

    @classmethod
    def load(cls, path: Path) -> Scaler:
        state = read_checkpoint(path)
        names = {k.rsplit(".", 1)[0] for k in state}
        return cls(
            {n: state[f"{n}.mean"].numpy() for n in names}, {n: state[f"{n}.std"].numpy() for n in names}
        )


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

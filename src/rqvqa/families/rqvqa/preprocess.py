"""How frames and features become the RQ-VQA model's inputs: one implementation for training and inference,
saved with trained weights (timm's `pretrained_cfg` idea).

- `FrameTransform`: the Swin-B input of a key frame: PIL Resize(resize) on the short side (bilinear; a no-op
  on the cached 384 frames when resize is 384), CenterCrop(crop) (RandomCrop when training), ImageNet
  normalisation;
- `Scaler`: per-source feature standardisation fitted on a training split (trained heads only);
- `Preprocessing`: the key-frame plan (`mode`) and the frame transform a set of weights expects; a
  `rqvqa train`
  folder records it in `ensemble.json`, the released checkpoints use the official defaults;
- `align_rows`: per-frame feature rows aligned to the key frames (the official padding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rqvqa.errors import InputError
from rqvqa.preprocess import Normalization

if TYPE_CHECKING:
    import torch

#: Swin-B (ImageNet-22k) input normalisation
IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


# ------------------------------------------------------------------------------------------------- frames


def center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """torchvision CenterCrop on an (H, W, C) array: offsets round((H - size) / 2); zero-pads small frames."""
    rgb = _pad_to(rgb, size)
    h, w = rgb.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return rgb[top : top + size, left : left + size]


def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """torchvision RandomCrop on an (H, W, C) array, drawing the offsets from `rng`."""
    rgb = _pad_to(rgb, size)
    h, w = rgb.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return rgb[top : top + size, left : left + size]


def _pad_to(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h >= size and w >= size:
        return rgb
    ph, pw = max(size - h, 0), max(size - w, 0)
    # torchvision pads both sides, the extra pixel going to the bottom/right.
    pads = [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)] + [(0, 0)] * (rgb.ndim - 2)
    return np.pad(rgb, pads)


@dataclass(frozen=True)
class FrameTransform:
    """The official Swin-B frame transform (see the module docstring)."""

    resize: int = 384
    crop: int = 384
    normalization: Normalization = IMAGENET

    def crops(
        self, frames: Sequence[np.ndarray], train: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """uint8 RGB (H, W, 3) frames -> (F, crop, crop, 3) uint8: resize, then the crop."""
        from PIL import Image

        out = []
        for rgb in frames:
            h, w = rgb.shape[:2]
            if min(h, w) != self.resize:
                if w <= h:
                    size = (self.resize, int(self.resize * h / w))
                else:
                    size = (int(self.resize * w / h), self.resize)
                rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
            if train:
                out.append(random_crop(rgb, self.crop, rng if rng is not None else np.random.default_rng()))
            else:
                out.append(center_crop(rgb, self.crop))
        return np.stack(out)

    def __call__(
        self, frames: Sequence[np.ndarray], train: bool = False, rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        """uint8 RGB frames -> (F, 3, crop, crop) float32, the base network's input."""
        return self.normalization(self.crops(frames, train, rng))

    def to_dict(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "normalization": self.normalization.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameTransform:
        norm = data.get("normalization")
        return cls(
            int(data.get("resize", 384)),
            int(data.get("crop", 384)),
            Normalization.from_dict(norm) if norm else IMAGENET,
        )


@dataclass(frozen=True)
class Preprocessing:
    """What a set of RQ-VQA weights expects: the key-frame plan and the frame transform."""

    mode: str = "official"
    frames: FrameTransform = field(default_factory=FrameTransform)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "frames": self.frames.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(str(data.get("mode", "official")), FrameTransform.from_dict(data.get("frames", {})))


def align_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """First `rows` rows of a per-frame array, repeating the last row when it has fewer (official padding);
    per-video vectors are returned unchanged."""
    if array.ndim == 1:
        return array
    if array.shape[0] >= rows:
        return array[:rows]
    return np.concatenate([array, np.repeat(array[-1:], rows - array.shape[0], axis=0)])


# ----------------------------------------------------------------------------------------------- features


@dataclass
class Scaler:
    """Per-source feature standardisation; NaNs (missing values in published feature files) become 0 after
    standardising, i.e. the training mean. The same `apply` serves training (numpy rows) and inference (torch
    tensors on the model's device)."""

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

    def apply(self, name: str, x: Any) -> Any:
        """Standardise source `name`'s features (a numpy array or a torch tensor; the result has its kind)."""
        if name not in self.mean:
            return x
        if isinstance(x, np.ndarray):
            return np.nan_to_num((x - self.mean[name]) / self.std[name]).astype(np.float32)
        import torch

        mean = torch.as_tensor(self.mean[name], device=x.device, dtype=x.dtype)
        std = torch.as_tensor(self.std[name], device=x.device, dtype=x.dtype)
        return torch.nan_to_num((x - mean) / std)

    def save(self, path: Path) -> None:
        import torch

        from rqvqa.checkpoints import save_safetensors
        from rqvqa.files import atomic_write

        tensors = {f"{n}.mean": torch.from_numpy(m) for n, m in self.mean.items()}
        tensors |= {f"{n}.std": torch.from_numpy(s) for n, s in self.std.items()}
        atomic_write(path, lambda tmp: save_safetensors(tensors, tmp), suffix=".safetensors")

    @classmethod
    def load(cls, path: Path) -> Scaler:
        from rqvqa.checkpoints import read_checkpoint

        state = read_checkpoint(path)
        names = {k.rsplit(".", 1)[0] for k in state}
        if not all(f"{n}.mean" in state and f"{n}.std" in state for n in names):
            raise InputError("not a feature scaler file (expected NAME.mean / NAME.std tensors)", path)
        return cls(
            {n: state[f"{n}.mean"].numpy() for n in names}, {n: state[f"{n}.std"].numpy() for n in names}
        )

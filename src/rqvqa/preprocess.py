"""Pixel normalisation shared by the networks: uint8 RGB (channels last, as the samplers give them) to the
float32 tensor a network reads (channels first). Each family declares its own constants next to its network
(`rqvqa.families.<family>.preprocess`); this is the one place that applies them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Normalization:
    """``(x / scale - mean) / std`` per channel, in float32 (`scale` 255 for mean/std on the 0-1 scale, 1 for
    constants on the 0-255 scale)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 255.0

    def __call__(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (..., H, W, 3) or (N, T, H, W, 3) -> float32 with the channel axis first after the batch axis
        ((3, H, W) for one image, (N, 3, H, W), (N, 3, T, H, W))."""
        import torch

        x = pixels if isinstance(pixels, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pixels))
        x = x.movedim(-1, 1 if x.ndim >= 4 else 0).float()
        if self.scale != 1.0:
            x = x.div(self.scale)
        shape = [1] * x.ndim
        shape[1 if x.ndim >= 4 else 0] = len(self.mean)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(shape)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        return cls(tuple(data["mean"]), tuple(data["std"]), float(data.get("scale", 255.0)))

"""Feature fusion and the quality regressor (rqvqa.md §2.3).

Per key frame, the slots' features are concatenated in a fixed order, regressed by
`Linear(in, 128) -> Linear(128, 1)` (no activation in between, as in the official checkpoints) and the frame
scores are averaged into the video score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rqvqa.errors import ConfigError, InputError


@dataclass(frozen=True)
class SourceSpec:
    """One slot of the fused vector: a feature name and its dimension."""

    name: str
    dim: int


class FusionHead(nn.Module):
    """features {name: (B, F, dim) per frame, or (B, dim) per video} -> (frame_scores (B, F), score (B)).

    Per-video vectors are repeated on every frame (the official FAST-VQA handling). `frame_mask` (B, F) marks
    real frames when a batch holds videos with different frame counts; padded frames are left out of the mean.
    """

    def __init__(self, slots: Sequence[SourceSpec], hidden: int = 128):
        super().__init__()
        if not slots:
            raise ConfigError("the fusion head needs at least one feature slot")
        self.slots = tuple(slots)
        self.in_dim = sum(s.dim for s in self.slots)
        self.quality = nn.Sequential(nn.Linear(self.in_dim, hidden), nn.Linear(hidden, 1))

    def fuse(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate the slots in order -> (B, F, in_dim)."""
        missing = [s.name for s in self.slots if s.name not in features]
        if missing:
            raise InputError(f"missing features for: {', '.join(missing)}")
        frames = {features[s.name].shape[1] for s in self.slots if features[s.name].dim() == 3}
        if len(frames) > 1:
            raise InputError(f"per-frame features disagree on the number of frames: {sorted(frames)}")
        n_frames = frames.pop() if frames else 1
        parts = []
        for slot in self.slots:
            x = features[slot.name]
            if x.dim() == 2:
                x = x.unsqueeze(1).expand(-1, n_frames, -1)
            if x.dim() != 3 or x.shape[-1] != slot.dim:
                raise InputError(
                    f"feature {slot.name!r} has shape {tuple(features[slot.name].shape)}, "
                    f"expected (B, F, {slot.dim}) or (B, {slot.dim})"
                )
            parts.append(x)
        # stored features may be float16 (the official LIQE/Q-Align files are): compute in the head's dtype
        return torch.cat(parts, dim=-1).to(self.quality[0].weight.dtype)

    def forward(
        self, features: Mapping[str, torch.Tensor], frame_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self.fuse(features)
        frame_scores = self.quality(fused).squeeze(-1)
        return frame_scores, pool_frames(frame_scores, frame_mask)


def pool_frames(frame_scores: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Arithmetic mean of the frame scores (B, F) -> (B), over the masked-in frames when a mask is given."""
    if frame_mask is None:
        return frame_scores.mean(dim=1)
    mask = frame_mask.to(frame_scores.dtype)
    return (frame_scores * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)

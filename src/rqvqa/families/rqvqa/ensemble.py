"""The ensemble of trained RQ-VQA models (mean of the members' raw outputs, as the official test.py) and the
loader of a `rqvqa train` output folder; used by inference without training code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.model import RQVQA, ModelConfig
from rqvqa.families.rqvqa.preprocess import Scaler


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
    return {name: scaler.apply(name, x) for name, x in features.items()}


def read_ensemble_spec(folder: str | Path) -> dict[str, Any]:
    """The ensemble.json of a `rqvqa train` output folder (model configuration, members, scalers,
    preprocessing, card)."""
    path = Path(folder) / "ensemble.json"
    if not path.is_file():
        raise InputError("no ensemble.json (not a training output folder)", Path(folder))
    try:
        spec = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"unreadable ensemble.json ({exc})", path) from None
    missing = [k for k in ("model", "members", "preprocessing") if k not in spec]
    if missing:
        raise InputError(
            f"ensemble.json lacks {', '.join(missing)} (written by an older rqvqa: train again)", path
        )
    return spec


def load_ensemble(
    folder: str | Path, spec: Mapping[str, Any], device: str | torch.device = "cpu"
) -> Ensemble:
    """The ensemble written by `train_splits` (our safetensors members) as `spec` (its ensemble.json) says."""
    from rqvqa.families.rqvqa.remap import load_weights

    folder = Path(folder)
    config = ModelConfig.from_dict(spec["model"])
    members = []
    for member in spec["members"]:
        model = RQVQA(config)
        load_weights(model, folder / member)
        members.append(model.eval())
    scalers = [Scaler.load(folder / p) for p in spec["scalers"]] if spec.get("scalers") else None
    return Ensemble(members, scalers).to(device)

"""The RQ-VQA regressor over a configurable list of feature sources, and its presets.

The fused per-frame vector is [base network output] followed by the external sources in the configured order.
The official RQ-VQA order is base 1024 | slowfast 256 | qalign 4096 | liqe 495 | fastvqa 768 = 6639 (the code
order, which the released checkpoints were trained with; the paper's Eq. 10 lists LIQE before Q-Align).
Ablations and new sources are configuration: `preset("no-liqe")`, or `ModelConfig(sources=parse_sources(
["slowfast", "videval:60"]), base=None)` for a head-only model on precomputed features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.head import FusionHead, SourceSpec
from rqvqa.families.rqvqa.swin_bot import BaseNetConfig, SwinBot
from rqvqa.registry import REGISTRY, RegistryError

__all__ = [
    "BASE_SLOT",
    "PRESETS",
    "BaseNetConfig",
    "ModelConfig",
    "RQVQA",
    "SourceSpec",
    "config_from_options",
    "parse_sources",
    "preset",
    "source_dim",
]

#: name of the slot filled by the base network (reserved: no feature source may use it)
BASE_SLOT = "base"


#: preset name -> (base pooling, or None for no base network; external sources in fusion order)
PRESETS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "rqvqa": ("bot", ("slowfast", "qalign", "liqe", "fastvqa")),
    "base": ("avg", ("slowfast",)),
    "no-qalign": ("bot", ("slowfast", "liqe", "fastvqa")),
    "no-liqe": ("bot", ("slowfast", "qalign", "fastvqa")),
    "no-fastvqa": ("bot", ("slowfast", "qalign", "liqe")),
}


def source_dim(name: str) -> int:
    """Width of a feature source known by name: the one its family declares (`rqvqa.registry.SourceCard`)."""
    try:
        return REGISTRY.source(name).dim
    except RegistryError:
        known = ", ".join(REGISTRY.source_names())
        reason = f"unknown feature source {name!r} (give it as NAME:DIM, or one of {known})"
        raise ConfigError(reason) from None


def parse_sources(items: Iterable[str | SourceSpec]) -> tuple[SourceSpec, ...]:
    """["slowfast", "videval:60", SourceSpec(...)] -> SourceSpecs; names without a dim are looked up."""
    specs: list[SourceSpec] = []
    for item in items:
        if isinstance(item, SourceSpec):
            spec = item
        else:
            name, _, dim = str(item).strip().partition(":")
            try:
                spec = SourceSpec(name, int(dim) if dim else source_dim(name))
            except ValueError as exc:
                raise ConfigError(f"bad source dimension in {item!r} (expected NAME:DIM)") from exc
        if spec.name == BASE_SLOT:
            raise ConfigError(f"{BASE_SLOT!r} is the base network's slot, not a feature source")
        if spec.dim <= 0:
            raise ConfigError(f"source {spec.name!r} has a non-positive dimension {spec.dim}")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"a source is listed twice: {', '.join(names)}")
    return tuple(specs)


@dataclass(frozen=True)
class ModelConfig:
    """What to fuse: the base network (None = head-only, on precomputed features) and the external sources."""

    sources: tuple[SourceSpec, ...]
    base: BaseNetConfig | None = field(default_factory=BaseNetConfig)
    hidden: int = 128
    #: preset this configuration came from (informational)
    name: str | None = None

    @property
    def source_names(self) -> list[str]:
        """The feature sources the model reads (what must be extracted or stored)."""
        return [s.name for s in self.sources]

    @property
    def needs_frames(self) -> bool:
        return self.base is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": None if self.base is None else self.base.to_dict(),
            "sources": [[s.name, s.dim] for s in self.sources],
            "hidden": self.hidden,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        try:
            base = None if data.get("base") is None else BaseNetConfig(**data["base"])
            sources = tuple(SourceSpec(str(n), int(d)) for n, d in data["sources"])
            return cls(sources=sources, base=base, hidden=int(data.get("hidden", 128)), name=data.get("name"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed model configuration: {exc}") from exc


def preset(name: str, base: BaseNetConfig | None = None) -> ModelConfig:
    """A named configuration. `base` overrides the backbone settings (architecture, input resolution,
    BoT sizes); the pooling (BoT or average) always comes from the preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    pooling, sources = PRESETS[name]
    base_cfg = None
    if pooling is not None:
        base_cfg = dataclasses.replace(base or BaseNetConfig(), pooling=pooling)
    return ModelConfig(sources=parse_sources(sources), base=base_cfg, name=name)


def config_from_options(
    preset_name: str | None = None,
    sources: Sequence[str] | None = None,
    base: str | None = None,
    arch: str | None = None,
    img_size: int | None = None,
) -> ModelConfig:
    """Build a configuration from CLI-style options: a preset, or an explicit source list with
    `base` in {"bot", "avg", "none"}; `arch`/`img_size` override the backbone (e.g. "swin_tiny_test", 224)."""
    if preset_name is not None and (sources or base):
        raise ConfigError("give either a preset or a source list with a base, not both")
    backbone = BaseNetConfig()
    if arch == "swin_tiny_test":
        backbone = BaseNetConfig.tiny()
    elif arch is not None:
        backbone = dataclasses.replace(backbone, arch=arch)
    if img_size is not None:
        backbone = dataclasses.replace(backbone, img_size=int(img_size))
    if preset_name is not None:
        return preset(preset_name, base=backbone)
    if not sources and base in (None, "none"):
        raise ConfigError("no preset, no sources and no base network given")
    base = base or "bot"
    if base not in ("bot", "avg", "none"):
        raise ConfigError(f"unknown base {base!r} (expected bot, avg or none)")
    base_cfg = None if base == "none" else dataclasses.replace(backbone, pooling=base)
    return ModelConfig(sources=parse_sources(sources or []), base=base_cfg)


class RQVQA(nn.Module):
    """frames (B, F, 3, H, W) + {source: (B, F, dim) | (B, dim)} -> (frame_scores (B, F), score (B)).

    Frames are ImageNet-normalised crops (`rqvqa.families.rqvqa.preprocess.FrameTransform`); for a head-only
    model (`config.base is None`) pass `frames=None`. State-dict layout: `base.swin.*` (timm 1.x Swin names),
    `base.bot.*` (official BoT names), `head.quality.{0,1}.*`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.base = SwinBot(config.base) if config.base is not None else None
        slots = [SourceSpec(BASE_SLOT, self.base.out_dim)] if self.base is not None else []
        self.head = FusionHead([*slots, *config.sources], hidden=config.hidden)

    @property
    def in_dim(self) -> int:
        return self.head.in_dim

    def base_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) -> (B, F, out_dim); frames are processed batch-major (row = b * F + f)."""
        if self.base is None:
            raise ConfigError("this model has no base network (head-only configuration)")
        if frames.dim() != 5:
            raise InputError(f"frames must be (B, F, 3, H, W), got {tuple(frames.shape)}")
        b, f = frames.shape[:2]
        return self.base(frames.flatten(0, 1)).view(b, f, -1)

    def features_with_base(
        self, frames: torch.Tensor | None, features: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        feats = dict(features)
        if self.base is not None:
            if frames is None:
                raise InputError("this model needs key frames for its base network")
            feats[BASE_SLOT] = self.base_features(frames)
        return feats

    def fuse(self, frames: torch.Tensor | None, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The concatenated per-frame vectors (B, F, in_dim)."""
        return self.head.fuse(self.features_with_base(frames, features))

    def forward(
        self,
        frames: torch.Tensor | None,
        features: Mapping[str, torch.Tensor],
        frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.features_with_base(frames, features), frame_mask)

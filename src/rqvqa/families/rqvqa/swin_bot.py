"""The learnable base network: Swin-B (timm) -> BoT stack -> mean over positions (rqvqa.md §2.1).

`pooling="bot"` is the full RQ-VQA spatial branch (GP(MHSA(SwinB(z)))); `pooling="avg"` is the base model
(`RQ_VQA_base_model` / the LSVQ-pretrained `Swin_b_384_in22k`): the token map averaged without a BoT stack.
The backbone is always built with random weights (upstream defect #3: it downloaded ImageNet weights even when
a full checkpoint followed); ImageNet-22k weights are loaded only on request from a local file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from timm.models.swin_transformer import SwinTransformer
from torch import nn

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint
from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.bot import BoTStack

#: Backbones built directly from timm's SwinTransformer class (not in timm's registry): tiny configurations
#: with the same structure as Swin-B, for tests and CPU training.
SMALL_SWINS: dict[str, dict[str, Any]] = {
    "swin_tiny_test": dict(
        patch_size=4, window_size=2, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)
    ),
}

#: The official backbone: timm 1.x name of `swin_base_patch4_window12_384_in22k`.
SWIN_B = "swin_base_patch4_window12_384"


@dataclass(frozen=True)
class BaseNetConfig:
    """Settings of the base network. The defaults are RQ-VQA's (Swin-B in22k at 384, BoT 3x4 heads, 128-d)."""

    arch: str = SWIN_B
    img_size: int = 384
    pooling: Literal["bot", "avg"] = "bot"
    bot_heads: int = 4
    bot_layers: int = 3
    bot_proj_factor: int = 4
    bot_dim_qk: int = 128
    bot_dim_v: int = 128
    #: extra keyword arguments for the timm constructor (e.g. drop_path_rate)
    timm_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def tiny(cls, pooling: Literal["bot", "avg"] = "bot", img_size: int = 64) -> BaseNetConfig:
        """A ~0.4 M-parameter network with Swin-B's structure, for tests and CPU training."""
        return cls(
            arch="swin_tiny_test",
            img_size=img_size,
            pooling=pooling,
            bot_heads=2,
            bot_dim_qk=16,
            bot_dim_v=16,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_swin(arch: str, img_size: int, **kwargs: Any) -> SwinTransformer:
    """A headless Swin transformer with random weights whose `forward_features` returns NHWC tokens."""
    if arch in SMALL_SWINS:
        return SwinTransformer(img_size=img_size, num_classes=0, **SMALL_SWINS[arch], **kwargs)
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=0, img_size=img_size, **kwargs)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"cannot build backbone {arch!r} at {img_size}px: {exc}") from exc
    if not isinstance(model, SwinTransformer):
        raise ConfigError(f"backbone {arch!r} is a {type(model).__name__}, not a Swin transformer")
    return model


class SwinBot(nn.Module):
    """Key frames (N, 3, H, W), ImageNet-normalised -> one `out_dim` vector per frame (N, out_dim)."""

    def __init__(self, config: BaseNetConfig | None = None):
        super().__init__()
        self.config = config or BaseNetConfig()
        cfg = self.config
        if cfg.pooling not in ("bot", "avg"):
            raise ConfigError(f"unknown base pooling {cfg.pooling!r} (expected 'bot' or 'avg')")
        self.swin = build_swin(cfg.arch, cfg.img_size, **cfg.timm_kwargs)
        self.out_dim = int(self.swin.num_features)
        self.grid = tuple(int(s) for s in self.swin.layers[-1].output_resolution)
        self.bot = (
            BoTStack(
                dim=self.out_dim,
                fmap_size=self.grid,
                dim_out=self.out_dim,
                heads=cfg.bot_heads,
                proj_factor=cfg.bot_proj_factor,
                num_layers=cfg.bot_layers,
                stride=1,
                dim_qk=cfg.bot_dim_qk,
                dim_v=cfg.bot_dim_v,
                rel_pos_emb=True,
            )
            if cfg.pooling == "bot"
            else None
        )

    def token_map(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> channels-first map (N, C, h, w); token t sits at row t // w, column t % w."""
        size = self.config.img_size
        if frames.dim() != 4 or frames.shape[1] != 3 or tuple(frames.shape[2:]) != (size, size):
            raise InputError(
                f"the base network takes (N, 3, {size}, {size}) crops, got {tuple(frames.shape)}"
            )
        return self.swin.forward_features(frames).permute(0, 3, 1, 2)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        fmap = self.token_map(frames)
        if self.bot is not None:
            fmap = self.bot(fmap)
        return fmap.mean(dim=(2, 3))


def load_imagenet_weights(swin: SwinTransformer, path: str | Path) -> None:
    """Initialise the backbone from a local ImageNet checkpoint (Microsoft or timm layout); the classifier is
    discarded. Only for training from scratch: official RQ-VQA/LSVQ checkpoints replace these weights."""
    from timm.models.swin_transformer import checkpoint_filter_fn

    state = extract_state_dict(read_checkpoint(path), keys=("model", "state_dict"))
    state = checkpoint_filter_fn(state, swin)
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    load_strict(swin, state, path)

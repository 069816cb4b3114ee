"""Hyper-parameters of mPLUG-Owl2 (the Q-Align / OneAlign network).

Defaults are those of ``q-future/one-align``: LLaMA-2-7B text settings from its ``config.json`` and the visual
defaults of the official ``MPLUGOwl2Config`` (448-px ViT-L/14-like encoder, 64-query abstractor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rqvqa.errors import ConfigError

#: placeholder id of the image in the token sequence (replaced by the visual tokens)
IMAGE_TOKEN_INDEX = -200


@dataclass(frozen=True)
class LlmConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 32
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    attention_bias: bool = False


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6


@dataclass(frozen=True)
class AbstractorConfig:
    num_learnable_queries: int = 64
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2816
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024
    grid_size: int = 32


@dataclass(frozen=True)
class Owl2Config:
    llm: LlmConfig = field(default_factory=LlmConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    abstractor: AbstractorConfig = field(default_factory=AbstractorConfig)

    def __post_init__(self) -> None:
        v, a = self.vision, self.abstractor
        # The official abstractor adds the 2-D sin-cos table of the vision grid to the image tokens, so
        # the grid and widths must agree with the encoder.
        if v.image_size % v.patch_size or a.grid_size != v.image_size // v.patch_size:
            raise ConfigError(
                f"abstractor grid_size {a.grid_size} must equal image_size/patch_size "
                f"({v.image_size}/{v.patch_size})"
            )
        if a.encoder_hidden_size != v.hidden_size or a.hidden_size != v.hidden_size:
            raise ConfigError("abstractor hidden/encoder_hidden sizes must equal the vision hidden size")
        if self.llm.num_attention_heads % self.llm.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads")

    @property
    def num_visual_tokens(self) -> int:
        """Visual tokens per image in the LLM sequence: the queries plus the end-of-visual token."""
        return self.abstractor.num_learnable_queries + 1

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> Owl2Config:
        """Build from an HF-style ``config.json`` dict (LLM keys at top level, ``visual_config`` with
        ``visual_model`` / ``visual_abstractor``) or the ``llm``/``visual_model``/``visual_abstractor`` layout
        of the golden-fixture sidecar. Unknown keys are ignored; absent ones keep the one-align defaults."""
        if cfg.get("rope_scaling"):
            raise ConfigError(f"rope_scaling {cfg['rope_scaling']!r} is not supported (one-align has none)")
        llm_src = cfg.get("llm", cfg)
        visual = cfg.get("visual_config") or {}
        vision_src = cfg.get("visual_model", visual.get("visual_model", {})) or {}
        abstractor_src = cfg.get("visual_abstractor", visual.get("visual_abstractor", {})) or {}
        # Activations are fixed in the modules; refuse configs that ask for others rather than ignore them.
        for src, expected in ((llm_src, "silu"), (vision_src, "quick_gelu")):
            if src.get("hidden_act", expected) != expected:
                raise ConfigError(
                    f"hidden_act {src['hidden_act']!r} is not supported (expected {expected!r})"
                )
        return cls(
            llm=_pick(LlmConfig, llm_src),
            vision=_pick(VisionConfig, vision_src),
            abstractor=_pick(AbstractorConfig, abstractor_src),
        )

    @classmethod
    def from_checkpoint_dir(cls, path: str | Path) -> Owl2Config:
        """The checkpoint's ``config.json`` when present, else the one-align defaults."""
        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(config_file.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc})", config_file) from exc


def _pick(kind: type, src: dict[str, Any]) -> Any:
    names = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in src.items() if k in names and v is not None})


#: A tiny configuration with the official structure (2 LLM layers of width 64, 56-px images, 8 queries), for
#: tests and CPU smoke runs with random weights.
TINY_CONFIG = Owl2Config(
    llm=LlmConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    ),
    vision=VisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56
    ),
    abstractor=AbstractorConfig(
        num_learnable_queries=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        encoder_hidden_size=32,
        grid_size=4,
    ),
)

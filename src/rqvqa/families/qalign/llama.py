"""LLaMA-2 decoder layers with mPLUG-Owl2's modality-adaptive modules, on plain torch.

``k_proj``, ``v_proj``, ``input_layernorm`` and ``post_attention_layernorm`` exist twice (``multiway.0``
for text tokens, ``multiway.1`` for visual tokens); ``q_proj``, ``o_proj`` and the MLP are shared. Everything
else is standard LLaMA: RMSNorm computed in float32, rotate-half RoPE with the cos/sin tables built in float32
and cast to the activation dtype, causal attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rqvqa.families.qalign.config import LlmConfig


class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


@dataclass(frozen=True)
class ModalityRouting:
    """Flat (batch*length) indices of the text and of the visual tokens, computed once per forward so the
    per-layer routing needs no host synchronisation."""

    text: torch.Tensor
    visual: torch.Tensor

    @classmethod
    def from_indicators(cls, indicators: torch.Tensor) -> ModalityRouting:
        flat = indicators.reshape(-1)
        return cls(text=(flat == 0).nonzero().squeeze(1), visual=(flat == 1).nonzero().squeeze(1))


class MultiwayNetwork(nn.Module):
    """Two copies of a token-wise module; each token goes through the copy of its modality."""

    def __init__(self, make: Callable[[], nn.Module]):
        super().__init__()
        self.multiway = nn.ModuleList([make(), make()])

    def forward(self, x: torch.Tensor, routing: ModalityRouting) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out: torch.Tensor | None = None
        for branch, rows in zip(self.multiway, (routing.text, routing.visual), strict=True):
            if rows.numel() == 0:
                continue
            y = branch(flat.index_select(0, rows))
            if out is None:
                out = y.new_empty(flat.shape[0], y.shape[-1])
            out.index_copy_(0, rows, y)
        assert out is not None, "empty sequence"
        return out.view(*x.shape[:-1], out.shape[-1])


def rope_tables(cfg: LlmConfig, length: int, device: torch.device, dtype: torch.dtype):
    """cos/sin (length, head_dim) for positions 0..length-1."""
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    inv_freq = 1.0 / (
        cfg.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim)
    )
    t = torch.arange(length, device=device, dtype=torch.float32)
    angles = torch.outer(t, inv_freq)
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        kv_width = self.num_kv_heads * self.head_dim
        bias = cfg.attention_bias
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=bias)
        self.k_proj = MultiwayNetwork(lambda: nn.Linear(cfg.hidden_size, kv_width, bias=bias))
        self.v_proj = MultiwayNetwork(lambda: nn.Linear(cfg.hidden_size, kv_width, bias=bias))
        self.o_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=bias)

    def forward(
        self, x: torch.Tensor, routing: ModalityRouting, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x, routing).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x, routing).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if self.num_kv_heads != self.num_heads:
            groups = self.num_heads // self.num_kv_heads
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = Mlp(cfg)
        self.input_layernorm = MultiwayNetwork(lambda: RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
        self.post_attention_layernorm = MultiwayNetwork(lambda: RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))

    def forward(
        self, x: torch.Tensor, routing: ModalityRouting, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x, routing), routing, cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x, routing))

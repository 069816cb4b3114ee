"""mPLUG-Owl2's visual side: a CLIP-ViT-like encoder and the visual abstractor.

Attribute names follow the official checkpoint (``model.vision_model.*``, ``model.visual_abstractor.*``).
Facts that matter for weight compatibility:

- the fused ``query_key_value`` projection is laid out per head as (heads, 3, head_dim), not (3, heads, ...);
- the abstractor's queries attend to [normed queries ; normed image tokens], with the 1-D sin-cos table added
  to the queries and [1-D table ; 2-D table with a zero CLS row] added to the keys (not to the values);
- its residual stream starts from the *normed* queries; ``norm1``/``normk``/``norm2`` use the LayerNorm
  default eps 1e-5 while ``ffn_ln`` uses the configured eps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rqvqa.families.qalign.config import AbstractorConfig, VisionConfig


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """MAE-style table (len(positions), dim), sines of all frequencies, then cosines (float32 as upstream)."""
    omega = np.arange(dim // 2, dtype=np.float32)
    omega /= dim / 2.0
    omega = 1.0 / 10000**omega
    angles = np.einsum("m,d->md", positions.reshape(-1).astype(np.float32), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d_with_cls(dim: int, grid: int) -> np.ndarray:
    """(1 + grid*grid, dim): a zero row for the CLS token, then row-major patches; the first half of the
    channels encodes the column (x) and the second half the row (y), as MAE's meshgrid(w, h) does."""
    cols, rows = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32))
    table = np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)
    return np.concatenate([np.zeros((1, dim), dtype=np.float32), table], axis=0)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class VisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        self.patch_embed = nn.Conv2d(3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, n_patches + 1, cfg.hidden_size))
        self.pre_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(patches.shape[0], 1, -1).to(patches.dtype)
        tokens = torch.cat([cls, patches], dim=1)
        tokens = tokens + self.position_embedding[:, : tokens.shape[1]].to(patches.dtype)
        return self.pre_layernorm(tokens)


class VisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.query_key_value = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.query_key_value(x).reshape(b, n, self.num_heads, 3, d // self.num_heads)
        q, k, v = qkv.permute(3, 0, 2, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.dense(out.transpose(1, 2).reshape(b, n, d))


class VisionMlp(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = QuickGELU()
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.self_attn = VisionAttention(cfg)
        self.input_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = VisionMlp(cfg)
        self.post_attention_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionModel(nn.Module):
    """Pixels (B, 3, S, S) -> tokens (B, 1 + (S/patch)^2, hidden), post-LayerNorm applied to every token."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


class AbstractorMlp(nn.Module):
    """SwiGLU with a LayerNorm on the gated hidden layer."""

    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.w2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.w3 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ffn_ln = nn.LayerNorm(cfg.intermediate_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(F.silu(self.w1(x)) * self.w3(x)))


class AbstractorMultiHeadAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)
        # Persistent buffers of the official state dict (they may or may not be in the released shards). Built
        # from numpy, so they hold real values even when the module is constructed on the meta device.
        q_table = sincos_1d(cfg.hidden_size, np.arange(cfg.num_learnable_queries, dtype=np.float32))
        self.register_buffer("q_pos_embed", torch.from_numpy(q_table))
        self.register_buffer(
            "k_pos_embed", torch.from_numpy(sincos_2d_with_cls(cfg.hidden_size, cfg.grid_size))
        )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor) -> torch.Tensor:
        """queries (B, Q, D) already normed; keys_values (B, Q + N, D) = [queries ; image tokens]."""
        dtype = queries.dtype
        q_pos = self.q_pos_embed.to(dtype)
        k_pos = torch.cat([q_pos, self.k_pos_embed.to(dtype)], dim=0)
        q = self._heads(self.query(queries + q_pos))
        k = self._heads(self.key(keys_values + k_pos))
        v = self._heads(self.value(keys_values))
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, -1)


class AbstractorCrossOutput(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm2 = nn.LayerNorm(cfg.hidden_size)  # default eps, as upstream
        self.mlp = AbstractorMlp(cfg)

    def forward(self, attended: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = residual + self.out_proj(attended)
        return x + self.mlp(self.norm2(x))


class AbstractorCrossAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.attention = AbstractorMultiHeadAttention(cfg)
        self.output = AbstractorCrossOutput(cfg)
        self.norm1 = nn.LayerNorm(cfg.hidden_size)  # default eps, as upstream
        self.normk = nn.LayerNorm(cfg.hidden_size)

    def forward(self, queries: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        queries = self.norm1(queries)
        keys_values = torch.cat([queries, self.normk(image_tokens)], dim=1)
        return self.output(self.attention(queries, keys_values), queries)


class AbstractorLayer(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.crossattention = AbstractorCrossAttention(cfg)

    def forward(self, queries: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        return self.crossattention(queries, image_tokens)


class AbstractorEncoder(nn.Module):
    def __init__(self, cfg: AbstractorConfig):
        super().__init__()
        self.layers = nn.ModuleList(AbstractorLayer(cfg) for _ in range(cfg.num_hidden_layers))


class VisualAbstractor(nn.Module):
    """Image tokens (B, N, Dv) -> visual tokens for the LLM (B, queries + 1, D_llm): the projected queries,
    then the learnable end-of-visual token ``vit_eos``."""

    def __init__(self, cfg: AbstractorConfig, llm_hidden_size: int):
        super().__init__()
        self.encoder = AbstractorEncoder(cfg)
        self.visual_fc = nn.Linear(cfg.hidden_size, llm_hidden_size)
        self.query_embeds = nn.Parameter(torch.zeros(1, cfg.num_learnable_queries, cfg.hidden_size))
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, llm_hidden_size))

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        b = image_tokens.shape[0]
        x = self.query_embeds.to(image_tokens.dtype).expand(b, -1, -1)
        for layer in self.encoder.layers:
            x = layer(x, image_tokens)
        x = self.visual_fc(x)
        return torch.cat([x, self.vit_eos.to(x.dtype).expand(b, -1, -1)], dim=1)

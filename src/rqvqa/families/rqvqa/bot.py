"""The Bottleneck-Transformer stack that the RQ-VQA paper calls "MHSA" (reference rqvqa.md §2.2).

Module and parameter names follow the official `botnet.py` (`net.{b}.net.3.to_qk.weight`,
`net.{b}.net.3.pos_emb.rel_height`, ...) so official state dicts load without renaming. The relative
position logits use a closed form (an explicit index table per axis) instead of the upstream rel-to-abs
padding trick, which hard-codes a CUDA device; both give the same logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from rqvqa.errors import ConfigError, InputError


def _relative_table(rel: torch.Tensor, size: int) -> torch.Tensor:
    """Expand a (2*size-1, d) relative table into (size, size, d): entry [a, b] = rel[b - a + size - 1]."""
    pos = torch.arange(size, device=rel.device)
    return rel[pos[None, :] - pos[:, None] + size - 1]


class RelPosEmb(nn.Module):
    """2-D relative position logits, one (2H-1, d) table per axis shared by all heads.

    For query (x, y) and key (i, j): q_xy · rel_height[i - x + H - 1] + q_xy · rel_width[j - y + W - 1].
    """

    def __init__(self, fmap_size: tuple[int, int], dim_head: int):
        super().__init__()
        height, width = fmap_size
        self.fmap_size = (height, width)
        scale = dim_head**-0.5
        self.rel_height = nn.Parameter(torch.randn(2 * height - 1, dim_head) * scale)
        self.rel_width = nn.Parameter(torch.randn(2 * width - 1, dim_head) * scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """q: (B, heads, H*W, d) -> logits (B, heads, H*W, H*W)."""
        height, width = self.fmap_size
        b, h, _, d = q.shape
        q = q.reshape(b, h, height, width, d)
        table_h = _relative_table(self.rel_height, height).to(q.dtype)  # (x, i, d)
        table_w = _relative_table(self.rel_width, width).to(q.dtype)  # (y, j, d)
        logits_h = torch.einsum("bhxyd,xid->bhxyi", q, table_h)
        logits_w = torch.einsum("bhxyd,yjd->bhxyj", q, table_w)
        logits = logits_h[..., :, None] + logits_w[..., None, :]  # (b, h, x, y, i, j)
        return logits.reshape(b, h, height * width, height * width)


class AbsPosEmb(nn.Module):
    """Absolute position logits (the official alternative, `rel_pos_emb=False`): for key (i, j) the query
    adds q · (height[i] + width[j]), the same for every query position."""

    def __init__(self, fmap_size: tuple[int, int], dim_head: int):
        super().__init__()
        height, width = fmap_size
        scale = dim_head**-0.5
        self.height = nn.Parameter(torch.randn(height, dim_head) * scale)
        self.width = nn.Parameter(torch.randn(width, dim_head) * scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        emb = (self.height[:, None, :] + self.width[None, :, :]).flatten(0, 1).to(q.dtype)  # (H*W, d)
        return q @ emb.T


class MHSA(nn.Module):
    """Multi-head self-attention over a feature map with 2-D relative position logits."""

    def __init__(
        self,
        dim: int,
        fmap_size: tuple[int, int],
        heads: int,
        dim_qk: int,
        dim_v: int,
        rel_pos_emb: bool = True,
    ):
        super().__init__()
        self.heads = heads
        self.dim_qk = dim_qk
        self.dim_v = dim_v
        self.scale = dim_qk**-0.5
        # q and k come from one convolution: the first heads*dim_qk output channels are q (official layout)
        self.to_qk = nn.Conv2d(dim, heads * dim_qk * 2, 1, bias=False)
        self.to_v = nn.Conv2d(dim, heads * dim_v, 1, bias=False)
        self.pos_emb = RelPosEmb(fmap_size, dim_qk) if rel_pos_emb else AbsPosEmb(fmap_size, dim_qk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        n = height * width
        q, k = self.to_qk(x).chunk(2, dim=1)
        v = self.to_v(x)
        # channel index = head * dim + d, positions row-major
        q = q.reshape(b, self.heads, self.dim_qk, n).transpose(-1, -2)
        k = k.reshape(b, self.heads, self.dim_qk, n).transpose(-1, -2)
        v = v.reshape(b, self.heads, self.dim_v, n).transpose(-1, -2)
        # the official code scales q before both the content and the relative logits
        q = q * self.scale
        logits = q @ k.transpose(-1, -2) + self.pos_emb(q)
        out = logits.softmax(dim=-1) @ v  # (b, heads, n, dim_v)
        return out.transpose(-1, -2).reshape(b, self.heads * self.dim_v, height, width)


class BoTBlock(nn.Module):
    """Bottleneck block: 1x1 conv -> BN -> act -> MHSA -> (pool) -> BN -> act -> 1x1 conv -> BN, plus the
    shortcut, then the activation (after the residual sum)."""

    def __init__(
        self,
        dim: int,
        fmap_size: tuple[int, int],
        dim_out: int,
        proj_factor: int,
        downsample: bool,
        heads: int,
        dim_qk: int,
        dim_v: int,
        rel_pos_emb: bool = True,
        activation: Callable[[], nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if dim != dim_out or downsample:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(dim, dim_out, 1, stride=2 if downsample else 1, bias=False),
                nn.BatchNorm2d(dim_out),
                activation(),
            )
        else:
            self.shortcut = nn.Identity()
        attn_in = dim_out // proj_factor
        attn_out = heads * dim_v
        self.net = nn.Sequential(
            nn.Conv2d(dim, attn_in, 1, bias=False),
            nn.BatchNorm2d(attn_in),
            activation(),
            MHSA(attn_in, fmap_size, heads, dim_qk, dim_v, rel_pos_emb),
            nn.AvgPool2d(2) if downsample else nn.Identity(),
            nn.BatchNorm2d(attn_out),
            activation(),
            nn.Conv2d(attn_out, dim_out, 1, bias=False),
            nn.BatchNorm2d(dim_out),
        )
        # zero gamma: at initialisation the residual branch is silent and the block computes act(x)
        nn.init.zeros_(self.net[-1].weight)
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.net(x) + self.shortcut(x))


class BoTStack(nn.Module):
    """`num_layers` BoT blocks; only the first may change the width or downsample (stride 2). Defaults are the
    official class's; RQ-VQA uses dim = dim_out = 1024, fmap (12, 12), stride 1, rel_pos_emb=True. Unlike
    upstream (square maps only), rectangular maps work."""

    def __init__(
        self,
        dim: int,
        fmap_size: Sequence[int],
        dim_out: int = 2048,
        heads: int = 4,
        proj_factor: int = 4,
        num_layers: int = 3,
        stride: int = 2,
        dim_qk: int = 128,
        dim_v: int = 128,
        rel_pos_emb: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"BoT stride must be 1 or 2, got {stride}")
        height, width = (int(s) for s in fmap_size)
        downsample = stride == 2
        self.dim, self.dim_out, self.fmap_size = dim, dim_out, (height, width)
        blocks = []
        for i in range(num_layers):
            first = i == 0
            # the first block attends at full resolution and pools afterwards; later blocks see the pooled map
            divisor = 2 if downsample and not first else 1
            blocks.append(
                BoTBlock(
                    dim=dim if first else dim_out,
                    fmap_size=(height // divisor, width // divisor),
                    dim_out=dim_out,
                    proj_factor=proj_factor,
                    downsample=first and downsample,
                    heads=heads,
                    dim_qk=dim_qk,
                    dim_v=dim_v,
                    rel_pos_emb=rel_pos_emb,
                    activation=activation,
                )
            )
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.dim or tuple(x.shape[2:]) != self.fmap_size:
            raise InputError(
                f"BoT stack expects (B, {self.dim}, {self.fmap_size[0]}, {self.fmap_size[1]}), "
                f"got {tuple(x.shape)}"
            )
        return self.net(x)

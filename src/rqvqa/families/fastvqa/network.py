"""Video Swin Transformer with FAST-VQA's gated fragment position bias (GRPB), and FAST-VQA's VQA head.

Weight-compatible with FAST-VQA's `SwinTransformer3D` ("swin_tiny_grpb") and with the `state_dict` of
`FAST_VQA_B_1_4.pth` (`fragments_backbone.*` + `vqa_head.*`, 197 keys, including the int64
`relative_position_index` buffers). Inference only: dropout and stochastic depth are identity in eval mode and
are not built.

The GRPB (`reference/fastvqa.md` section 5): in stages with a fragment table, the attention bias of a token
pair is ``rpb * g + fpb * (1 - g)`` where ``g`` is the L1 distance, in fragment units, between the fragments
the two tokens lie in. ``g`` is an unclamped integer computed on the padded and cyclically shifted token grid,
so pairs that the shift wraps around get large ``g`` values; reproducing that is what makes the official
weights behave as trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint
from rqvqa.errors import ConfigError, WeightsError

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class VideoSwinConfig:
    """Constructor settings of FAST-VQA's `SwinTransformer3D`; the defaults are FAST-VQA-B's."""

    patch_size: Triple = (2, 4, 4)
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: Triple = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True
    frag_biases: tuple[bool, ...] = (True, True, True, False)
    base_x_size: Triple = (32, 224, 224)

    #: official arguments that only matter for training or memory, accepted and ignored at inference
    _TRAINING_ONLY = frozenset({"use_checkpoint", "drop_path_rate", "drop_rate", "attn_drop_rate"})

    def __post_init__(self) -> None:
        n = len(self.depths)
        if len(self.num_heads) != n or len(self.frag_biases) != n:
            raise ConfigError("depths, num_heads and frag_biases must have one entry per stage")
        for stage, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2**stage) % heads:
                width = self.embed_dim * 2**stage
                raise ConfigError(f"stage {stage}: width {width} not divisible by {heads} heads")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> VideoSwinConfig:
        """Build from the official constructor keyword arguments (e.g. a fixture sidecar)."""
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known - cls._TRAINING_ONLY
        if unknown:
            raise ConfigError(f"unknown Video Swin settings: {', '.join(sorted(unknown))}")
        kwargs = {}
        for key, value in config.items():
            if key in known:
                kwargs[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


# ---------------------------------------------------------------------------------------------- geometry


def relative_position_index(window: Triple) -> torch.Tensor:
    """(N, N) int64 row index into the ((2Wd-1)(2Wh-1)(2Ww-1), nH) bias table, N = Wd*Wh*Ww tokens."""
    grid = torch.stack(torch.meshgrid(*(torch.arange(w) for w in window), indexing="ij")).flatten(1)
    delta = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)  # (N, N, 3), query minus key
    delta = delta + torch.tensor([w - 1 for w in window])
    strides = torch.tensor([(2 * window[1] - 1) * (2 * window[2] - 1), 2 * window[2] - 1, 1])
    return (delta * strides).sum(-1)


def effective_window(size: Triple, window: Sequence[int], shift: Sequence[int]) -> tuple[Triple, Triple]:
    """Shrink the window (and drop the shift) along every axis where the feature map is not larger."""
    win = tuple(s if s <= w else w for s, w in zip(size, window, strict=True))
    sh = tuple(0 if s <= w else h for s, w, h in zip(size, window, shift, strict=True))
    return win, sh  # type: ignore[return-value]


def adaptive_window_size(window: Triple, x_size: Sequence[int], base_x_size: Triple) -> Triple:
    """FAST-VQA's adaptive multi-scale window: scale the window with the input relative to `base_x_size`."""
    return tuple((w * x) // b for w, x, b in zip(window, x_size, base_x_size, strict=True))  # type: ignore[return-value]


def partition_windows(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """(B, D, H, W, C) -> (B * nW, Wd*Wh*Ww, C), windows in (d, h, w) raster order."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def merge_windows(windows: torch.Tensor, window: Triple, b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `partition_windows`."""
    wd, wh, ww = window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


@lru_cache(maxsize=64)
def _shift_mask(padded: Triple, window: Triple, shift: Triple, device: torch.device) -> torch.Tensor:
    """(nW, N, N) additive mask: -100 between tokens that the cyclic shift brought from different regions."""
    region = torch.zeros((1, *padded, 1), device=device)
    label = 0
    for ds in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for hs in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for ws in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                region[:, ds, hs, ws, :] = label
                label += 1
    labels = partition_windows(region, window).squeeze(-1)
    differs = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differs.shape, device=device).masked_fill(differs, -100.0)


def fragment_gate(padded: Triple, window: Triple, shift: Triple, device: torch.device) -> torch.Tensor:
    """(nW, N, N) int32 gate g: L1 distance, in fragments, between the fragments of each token pair.

    One temporal fragment and a (window_h x window_w) spatial grid of fragments are stretched over the padded
    map by nearest interpolation, then rolled and windowed exactly like the features.
    """
    counts = (1, window[1], window[2])
    ids = torch.stack(torch.meshgrid(*(torch.arange(n) for n in counts), indexing="ij")).float()
    ids = F.interpolate(ids[None].to(device), size=padded, mode="nearest").int()
    ids = ids.permute(0, 2, 3, 4, 1)  # (1, D, H, W, 3)
    ids = torch.roll(ids, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    per_window = partition_windows(ids, window)  # (nW, N, 3)
    # one axis at a time: the (nW, N, N, 3) difference tensor would take ~0.5 GB in stage 0
    n_windows, n = per_window.shape[:2]
    gate = torch.zeros(n_windows, n, n, dtype=torch.int32, device=device)
    for axis in range(3):
        coord = per_window[..., axis]
        gate += (coord[:, None, :] - coord[:, :, None]).abs()
    return gate


@lru_cache(maxsize=16)
def _cached_gate(padded: Triple, window: Triple, shift: Triple, device: torch.device, dtype: torch.dtype):
    """`fragment_gate` as (nW, 1, N, N) in the compute dtype (exact: small integers), computed once per
    geometry because converting it on every block costs as much as the bias arithmetic."""
    return fragment_gate(padded, window, shift, device).unsqueeze(1).to(dtype)


# ---------------------------------------------------------------------------------------------- modules


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size: Triple, embed_dim: int, norm: bool):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # pad the far end of every axis up to a multiple of the patch size
        pads: list[int] = []
        for size, patch in zip(reversed(x.shape[2:]), reversed(self.patch_size), strict=True):
            pads += [0, (patch - size % patch) % patch]
        if any(pads):
            x = F.pad(x, pads)
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return x


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention3D(nn.Module):
    def __init__(self, dim: int, window: Triple, num_heads: int, qkv_bias: bool, frag_bias: bool):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        table_rows = math.prod(2 * w - 1 for w in window)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_rows, num_heads))
        self.fragment_position_bias_table = (
            nn.Parameter(torch.zeros(table_rows, num_heads)) if frag_bias else None
        )
        # persistent: the official checkpoint stores it, and loading it lets us check it
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _table_index(self, window: Triple, adaptive: bool) -> torch.Tensor:
        n = math.prod(window)
        if not adaptive:
            # the official non-adaptive path takes the top-left N x N block of the full index
            return self.relative_position_index[:n, :n]
        full = self.relative_position_index.view(*self.window, *self.window)
        d, h, w = window
        return full[:d, :h, :w, :d, :h, :w].reshape(n, n)

    def _bias(self, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        n = index.shape[0]
        return table[index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)  # (nH, N, N)

    def forward(
        self,
        x: torch.Tensor,
        window: Triple,
        adaptive: bool,
        gate: torch.Tensor,
        shift_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        bw, n, c = x.shape
        n_windows, heads = gate.shape[0], self.num_heads
        qkv = self.qkv(x).view(bw // n_windows, n_windows, n, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]  # (B, nW, nH, N, head_dim)

        index = self._table_index(window, adaptive)
        bias = self._bias(self.relative_position_bias_table, index).unsqueeze(0)  # (1, nH, N, N)
        if self.fragment_position_bias_table is not None:
            # gate: (nW, 1, N, N) fragment distances; the official order of operations, kept for parity
            fragment_bias = self._bias(self.fragment_position_bias_table, index)
            bias = bias * gate + fragment_bias * (1 - gate)  # (nW, nH, N, N)
        if shift_mask is not None:
            bias = bias + shift_mask.to(bias.dtype).unsqueeze(1)
        # softmax(q k^T + bias) v in one fused call: on CPU the same numbers and cost as the explicit product
        # (checked on a full-size clip), on GPU no second copy of the (B*nW, nH, N, N) logits; q is
        # pre-scaled as upstream does
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0)
        return self.proj(out.transpose(2, 3).reshape(bw, n, c))


class SwinBlock3D(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, window: Triple, shift: Triple, cfg: VideoSwinConfig, frag_bias: bool
    ):
        super().__init__()
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, num_heads, cfg.qkv_bias, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))

    def _attention(self, x: torch.Tensor, window: Triple, adaptive: bool) -> torch.Tensor:
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), window, self.shift)
        x = self.norm1(x)
        pad = [(win - size % win) % win for size, win in zip((d, h, w), window, strict=True)]
        if any(pad):
            x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        padded: Triple = (d + pad[0], h + pad[1], w + pad[2])
        shifted = any(shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = _cached_gate(padded, window, shift, x.device, x.dtype)
        mask = _shift_mask(padded, window, shift, x.device) if shifted else None
        out = self.attn(partition_windows(x, window), window, adaptive, gate, mask)
        x = merge_windows(out, window, b, *padded)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w, :]

    def forward(self, x: torch.Tensor, window: Triple, adaptive: bool) -> torch.Tensor:
        x = x + self._attention(x, window, adaptive)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Halve H and W: concatenate each 2x2 neighbourhood (order (0,0), (1,0), (0,1), (1,1)), norm, project."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = [x[:, :, i::2, j::2, :] for j in (0, 1) for i in (0, 1)]
        return self.reduction(self.norm(torch.cat(parts, dim=-1)))


class SwinStage(nn.Module):
    def __init__(self, stage: int, cfg: VideoSwinConfig):
        super().__init__()
        dim = cfg.embed_dim * 2**stage
        self.window = cfg.window_size
        shift: Triple = tuple(w // 2 for w in cfg.window_size)  # type: ignore[assignment]
        self.blocks = nn.ModuleList(
            SwinBlock3D(
                dim,
                cfg.num_heads[stage],
                cfg.window_size,
                (0, 0, 0) if j % 2 == 0 else shift,
                cfg,
                cfg.frag_biases[stage],
            )
            for j in range(cfg.depths[stage])
        )
        self.downsample = PatchMerging(dim) if stage < len(cfg.depths) - 1 else None

    def forward(self, x: torch.Tensor, resized_window: Triple | None) -> torch.Tensor:
        """(B, C, D, H, W) -> (B, C', D, H', W')."""
        x = x.permute(0, 2, 3, 4, 1)
        window = self.window if resized_window is None else resized_window
        for block in self.blocks:
            x = block(x, window, resized_window is not None)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3)


class VideoSwin3D(nn.Module):
    """FAST-VQA's `SwinTransformer3D`: (N, 3, T, H, W) normalised video -> (N, C, T/2, H/32, W/32)."""

    def __init__(self, config: VideoSwinConfig | None = None):
        super().__init__()
        self.config = config = config or VideoSwinConfig()
        self.patch_embed = PatchEmbed3D(config.patch_size, config.embed_dim, config.patch_norm)
        self.layers = nn.ModuleList(SwinStage(i, config) for i in range(len(config.depths)))
        self.norm = nn.LayerNorm(config.num_features)

    def forward(self, x: torch.Tensor, adaptive_window: bool = True) -> torch.Tensor:
        return self.forward_stages(x, adaptive_window)[-1]

    def forward_stages(self, x: torch.Tensor, adaptive_window: bool = True) -> list[torch.Tensor]:
        """[patch embedding, stage 0 .. stage n-1 outputs (after their patch merging), final normed map]."""
        resized = (
            adaptive_window_size(self.config.window_size, x.shape[2:], self.config.base_x_size)
            if adaptive_window
            else None
        )
        x = self.patch_embed(x)
        outs = [x]
        for stage in self.layers:
            x = stage(x.contiguous(), resized)
            outs.append(x)
        outs.append(self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3))
        return outs


class VQAHead(nn.Module):
    """FAST-VQA's head: 1x1x1 conv 768->64, GELU, 1x1x1 conv 64->1 at every position (a local quality map)."""

    def __init__(self, in_channels: int = 768, hidden_channels: int = 64):
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden_channels, kernel_size=1)
        self.fc_last = nn.Conv3d(hidden_channels, 1, kernel_size=1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc_last(F.gelu(self.fc_hid(feat)))


#: FAST-VQA's `vqa.py` rescaling of raw FAST-VQA-B scores to [0, 1]: sigmoid((raw - mean) / std)
FASTVQA_B_SCORE_MEAN = -0.110198185
FASTVQA_B_SCORE_STD = 0.04178565


class FastVQA(nn.Module):
    """FAST-VQA (`DiViDeAddEvaluator` with one `fragments` branch): module names match the checkpoint's."""

    def __init__(self, config: VideoSwinConfig | None = None, head_hidden: int = 64):
        super().__init__()
        self.fragments_backbone = VideoSwin3D(config)
        self.vqa_head = VQAHead(self.fragments_backbone.config.num_features, head_hidden)

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(clips, 3, T, H, W) normalised -> (feature map, raw score = mean of the head's quality map)."""
        feat = self.fragments_backbone(clips)
        return feat, self.vqa_head(feat).mean()


def _check_index_buffers(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: Any) -> None:
    """The checkpoint's `relative_position_index` buffers are derived data: they must equal ours."""
    for key, own in model.state_dict().items():
        derived = key.endswith("relative_position_index") and key in state_dict
        if derived and not torch.equal(state_dict[key].to(own.device, own.dtype), own):
            raise WeightsError(f"{key} differs from the index this window size implies", source)


def fastvqa_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: VideoSwinConfig | None = None,
    source: str | Path | None = None,
) -> FastVQA:
    """Build FAST-VQA and load the `state_dict` entry of an official checkpoint strictly (all 197 keys)."""
    model = FastVQA(config)
    _check_index_buffers(model, state_dict, source)
    load_strict(model, state_dict, source)
    return model.eval()


def _numpy_metadata_globals() -> list[Any]:
    """Numpy scalar/array constructors: FAST-VQA's training script pickles its `validation_results`
    (numpy floats) next to the weights, which `weights_only=True` refuses unless these data-only types are
    allowed."""
    import numpy as np

    multiarray = getattr(np, "_core", None) or np.core
    dtypes = [np.dtypes.Float64DType, np.dtypes.Float32DType, np.dtypes.Int64DType]
    return [multiarray.multiarray.scalar, multiarray.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def load_fastvqa(path: str | Path, config: VideoSwinConfig | None = None) -> FastVQA:
    """Load `FAST_VQA_B_1_4.pth` (dict with "state_dict") or a safetensors export of the same keys."""
    with torch.serialization.safe_globals(_numpy_metadata_globals()):
        checkpoint = read_checkpoint(path)
    state_dict = extract_state_dict(checkpoint, keys=("state_dict",))
    return fastvqa_from_state_dict(state_dict, config, path)

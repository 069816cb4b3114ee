"""Official RQ-VQA / LSVQ checkpoints -> our state-dict layout (timm `checkpoint_filter_fn` style).

Official layouts (rqvqa.md §3, manifests in the fixtures):

- LSVQ-pretrained base (`Swin_b_384_in22k`, 366 keys): `feature_extraction.<timm 0.6.13 Swin>` + `quality.*`
  (in-dim 1280);
- `RQ_VQA_base_model` (366 keys): `feature_extraction.feature_extraction.<Swin>` + `quality.*` (1280);
- released KVQ checkpoints (`RQ_VQA` under DataParallel, 429 keys): `module.` + the Swin with the double
  prefix, `bot4.*` and `quality.*` (6639).

Ours (`rqvqa.families.rqvqa.model.RQVQA`): `base.swin.<timm 1.x Swin>`, `base.bot.*`, `head.quality.*`. The
Swin remap is
old -> new timm: `layers.{i}.downsample` moves to `layers.{i+1}`, and the old persistent buffers
`relative_position_index` / `attn_mask` (recomputed by timm 1.x, non-persistent there) are dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from safetensors import safe_open

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint, save_safetensors, strip_prefix
from rqvqa.errors import WeightsError

Kind = Literal["rqvqa", "lsvq-base"]

_SWIN_PREFIXES = ("feature_extraction.feature_extraction.", "feature_extraction.")
_OLD_SWIN_BUFFERS = ("relative_position_index", "attn_mask")
_DOWNSAMPLE = re.compile(r"^layers\.(\d+)\.downsample\.")


def _shift_downsample(key: str, by: int) -> str:
    return _DOWNSAMPLE.sub(lambda m: f"layers.{int(m.group(1)) + by}.downsample.", key)


def remap_swin_old_to_new(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm 0.6.13 Swin keys -> timm 1.x keys. A state dict already in the new layout (no stage-0
    downsample) passes through unchanged apart from dropping old buffers."""
    old_layout = any(k.startswith("layers.0.downsample.") for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in _OLD_SWIN_BUFFERS:
            continue
        out[_shift_downsample(key, 1) if old_layout else key] = value
    return out


def remap_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any official RQ-VQA/LSVQ state dict -> our key names. Keys it does not recognise are kept as they are,
    so a strict load reports them as unexpected."""
    state = strip_prefix(state_dict, "module.")
    swin: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix = next((p for p in _SWIN_PREFIXES if key.startswith(p)), None)
        if prefix is not None:
            swin[key[len(prefix) :]] = value
        elif key.startswith("bot4."):
            out["base.bot." + key[len("bot4.") :]] = value
        elif key.startswith("quality."):
            out["head." + key] = value
        else:
            out[key] = value
    out.update({"base.swin." + k: v for k, v in remap_swin_old_to_new(swin).items()})
    return out


def official_key(our_key: str, kind: Kind) -> str:
    """Inverse of `remap_official` for one key: where an official checkpoint of `kind` stores it."""
    if our_key.startswith("base.swin."):
        swin_key = _shift_downsample(our_key[len("base.swin.") :], -1)
        prefix = "module.feature_extraction.feature_extraction." if kind == "rqvqa" else "feature_extraction."
        return prefix + swin_key
    if our_key.startswith("base.bot."):
        return "module.bot4." + our_key[len("base.bot.") :]
    if our_key.startswith("head.quality."):
        return ("module." if kind == "rqvqa" else "") + our_key[len("head.") :]
    raise KeyError(our_key)


def read_official(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint safely (weights_only) and remap it to our names."""
    return remap_official(extract_state_dict(read_checkpoint(path)))


def load_official(model: torch.nn.Module, source: str | Path | Mapping[str, torch.Tensor]) -> None:
    """Strictly load an official checkpoint (file or state dict) whose layout matches `model` as a whole:
    a KVQ checkpoint into the `rqvqa` preset, the LSVQ base into the `base` preset. Any missing or unexpected
    key raises WeightsError listing them."""
    path = source if isinstance(source, str | Path) else None
    state = read_official(source) if path is not None else remap_official(source)
    load_strict(model, state, path)


def load_lsvq_backbone(
    model: torch.nn.Module,
    source: str | Path | Mapping[str, torch.Tensor],
    resize_position_tables: bool = True,
) -> None:
    """Initialise only the Swin of `model` (any preset) from the LSVQ base checkpoint, discarding its
    regressor, as the official `RQ_VQA.__init__` does. The Swin keys are checked strictly.

    At another input resolution than 384 (224, 320: paper Table 7) timm shrinks the windows of the stages
    whose maps are smaller than 12, so their relative-position bias tables change size; with
    `resize_position_tables` they are resized as timm's own `checkpoint_filter_fn` does."""
    path = source if isinstance(source, str | Path) else None
    state = read_official(source) if path is not None else remap_official(source)
    swin_state = {k[len("base.swin.") :]: v for k, v in state.items() if k.startswith("base.swin.")}
    others = sorted(k for k in state if not k.startswith(("base.swin.", "head.quality.")))
    if others:
        raise WeightsError(f"not an LSVQ base checkpoint: unexpected keys {', '.join(others[:8])}", path)
    base = getattr(model, "base", None)
    if base is None:
        raise WeightsError("the model has no base network to initialise", path)
    if resize_position_tables:
        swin_state = _resize_position_tables(base.swin, swin_state)
    load_strict(base.swin, swin_state, path)


def _resize_position_tables(swin: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from timm.layers import resize_rel_pos_bias_table

    own = swin.state_dict()
    out = dict(state)
    for key, value in state.items():
        if (
            not key.endswith("relative_position_bias_table")
            or key not in own
            or value.shape == own[key].shape
        ):
            continue
        attn = swin.get_submodule(key.rsplit(".", 1)[0])
        out[key] = resize_rel_pos_bias_table(
            value, new_window_size=attn.window_size, new_bias_shape=tuple(own[key].shape)
        )
    return out


def is_official_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for official RQ-VQA/LSVQ key names, False for our own layout."""
    return any(k.startswith(("module.", "feature_extraction.", "bot4.", "quality.")) for k in state_dict)


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Strictly load an official checkpoint or one of our safetensors exports into `model`."""
    state = extract_state_dict(read_checkpoint(path))
    load_strict(model, remap_official(state) if is_official_layout(state) else state, path)


CONFIG_METADATA_KEY = "rqvqa_model_config"


def save_model(model: torch.nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Export the model's state dict to safetensors in our layout, with its configuration as JSON metadata."""

    meta = dict(metadata or {})
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        meta[CONFIG_METADATA_KEY] = json.dumps(config.to_dict(), allow_nan=False)
    return save_safetensors(model.state_dict(), path, metadata=meta)


def read_model_config(path: str | Path) -> dict | None:
    """The model configuration stored by `save_model` in a safetensors file (None when absent)."""

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise WeightsError(f"not a readable safetensors file ({exc})", path) from exc
    return json.loads(meta[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in meta else None

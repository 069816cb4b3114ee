"""Safe checkpoint reading and strict loading with readable mismatch reports.

Never unpickles arbitrary objects: `.pth`/`.pt`/`.pyth`/`.bin` go through `torch.load(weights_only=True)`,
`.safetensors` through safetensors.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rqvqa.errors import WeightsError


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Read a checkpoint file safely and return what it holds (usually a dict)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("checkpoint file not found", path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(map_location))
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise WeightsError(f"not a readable safetensors file ({exc})", path) from exc
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message goes on for lines and advises retrying with weights_only=False, which would run
        # whatever code the file carries: say what happened in one line instead, and never that
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:  # the safe unpickler met bytes that are no pickle at all: a corrupt file
            operand = re.search(r"Unsupported operand \d+|invalid load key[^\n]*", str(exc))
            detail = f" ({operand.group(0).rstrip('.')})" if operand else ""
            raise WeightsError(f"not a readable checkpoint{detail}", path) from None
        held = f" ({found.group(1).rstrip('.')})"
        raise WeightsError(
            f"refused: the checkpoint holds Python objects{held} besides tensors, and rqvqa only loads "
            "tensors (safe loading); a file with the expected tensors is needed",
            path,
        ) from None
    except Exception as exc:  # RuntimeError, EOFError, zip errors...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WeightsError(f"not a readable checkpoint ({type(exc).__name__}: {first})", path) from None


def extract_state_dict(
    obj: Any, keys: tuple[str, ...] = ("state_dict", "model_state", "params", "model")
) -> dict:
    """Unwrap the usual containers ({"state_dict": ...}, {"model_state": ...}, {"params": ...})."""
    for key in keys:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            return dict(obj[key])
    if isinstance(obj, Mapping):
        return dict(obj)
    raise WeightsError(f"checkpoint holds a {type(obj).__name__}, not a state dict")


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` from every key that has it (e.g. DataParallel's "module.")."""
    n = len(prefix)
    return {(k[n:] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path | None = None
) -> None:
    """Load `state_dict` into `module`; any missing/unexpected key or shape mismatch raises WeightsError
    listing the offending keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_summarise(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_summarise(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {_summarise(shapes)}")
    if problems:
        raise WeightsError("checkpoint does not match the model: " + "; ".join(problems), source)
    module.load_state_dict(dict(state_dict), strict=True)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | Path, metadata: dict | None = None
) -> Path:
    """Export a state dict to safetensors (contiguous copies; shared storage is broken up)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return path


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """write(tmp) then move the finished file into place, so a kill never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Safe checkpoint reading, strict loading with readable mismatch reports, and `CheckpointSource`, the base of
the feature sources that run one pre-trained network loaded from one checkpoint.

Never unpickles arbitrary objects: `.pth`/`.pt`/`.pyth`/`.bin` go through `torch.load(weights_only=True)`,
`.safetensors` through safetensors.
"""

from __future__ import annotations

import pickle
import re
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rqvqa.errors import WeightsError
from rqvqa.precision import torch_dtype
from rqvqa.source import FeatureSource


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
    with path.open("rb") as handle:
        head = handle.read(4)
    # torch saves a zip archive (PK..) or, before 1.6, a pickle (protocol 2+: 0x80): anything else is no
    # checkpoint, said in our words (torch's would advise weights_only=False, which runs a file's code)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        what = "empty" if not head else "zero bytes" if head == bytes(len(head)) else f"starts with {head!r}"
        raise WeightsError(f"not a checkpoint (neither a torch archive nor a pickle: {what})", path)
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
        if "weights_only" in first:  # torch's advice to load unsafely: never passed on
            first = "not loadable as tensors only"
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


# ------------------------------------------------------------------------ sources of one checkpoint


class CheckpointSource(FeatureSource):
    """`weights`: a registry name (`rqvqa.weights`) or a checkpoint path; `model`: an already built network
    (tests, benchmarks), which takes precedence. The network is loaded by `setup()` (or on first use), on
    `device` in `dtype`; a pickled source leaves a loaded network behind (an injected one travels with it).
    """

    #: registry name of the checkpoint used when none is given
    default_weights: ClassVar[str]

    def __init__(
        self,
        weights: str | Path | None = None,
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        model: nn.Module | None = None,
    ):
        self.weights = str(weights or self.default_weights)
        self.weights_dir = weights_dir
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype) or torch.float32
        self._model = model
        self._injected = model is not None
        self._sha256: str | None = None

    def weights_id(self) -> str:
        """Which weights: the registry name or the file's name ("injected" for a network built in memory)."""
        return "injected" if self._injected else Path(self.weights).name

    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def config(self) -> dict[str, Any]:
        # fixed at construction, so loading the weights lazily never changes the feature-store key; the
        # compute dtype is part of it because fp16/bf16 move the features measurably, and the weights' content
        # hash because another file under the same name (a retrained LIQE.pt) gives other features
        config: dict[str, Any] = {"weights": self.weights_id(), "dtype": self.dtype_name()}
        digest = None if self._injected else self._content_sha256()
        if digest is not None:
            config["sha256"] = digest
        return config

    def _content_sha256(self) -> str | None:
        """sha256 of the checkpoint (hashed once per path, size and mtime), None while it cannot be found
        (no feature is computed then, so no store entry can carry that key)."""
        if self._sha256 is None:
            from rqvqa.weights import content_sha256

            try:
                self._sha256 = content_sha256(self.weights_path())
            except (WeightsError, OSError):
                return None
        return self._sha256

    def weights_path(self) -> Path:
        path = Path(self.weights)
        if path.is_file():
            return path
        from rqvqa.weights import resolve

        return resolve(self.weights, self.weights_dir)

    @abstractmethod
    def load(self, path: Path) -> nn.Module:
        """Build the network from the checkpoint at `path`."""

    def check(self) -> None:
        """Raise `WeightsError` now when the checkpoint cannot be found (before any video is decoded)."""
        if not self._injected:
            self.weights_path()

    def setup(self) -> None:
        if self._model is None:
            self._model = self.load(self.weights_path())

    @property
    def model(self) -> nn.Module:
        self.setup()
        return self._model.to(self.device, self.dtype).eval()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not self._injected:
            state["_model"] = None
        return state

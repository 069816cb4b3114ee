"""Loading mPLUG-Owl2 checkpoints (``q-future/one-align``) shard by shard, with bounded host memory.

The model is built on the ``meta`` device (no memory), then each shard is opened lazily (safetensors
``safe_open``; ``.bin`` through ``torch.load(weights_only=True, mmap=True)``), its tensors are converted to
the target dtype/device and assigned into the model, and the shard is released before the next one, so peak
host RAM stays near one shard. (`rqvqa.checkpoints.read_checkpoint` reads whole files eagerly, hence this
reader.)

Keys are matched strictly against the model's state dict, with two explicit tolerances:

- the abstractor's sin-cos buffers ``q_pos_embed``/``k_pos_embed`` are deterministic: loaded when present,
  computed when absent;
- ``rotary_emb.inv_freq`` buffers (written by older transformers) are ignored: RoPE tables are computed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from rqvqa.errors import ConfigError, WeightsError
from rqvqa.families.qalign.config import Owl2Config
from rqvqa.families.qalign.network import MplugOwl2

_POS_EMBED = re.compile(
    r"^model\.visual_abstractor\.encoder\.layers\.\d+\.crossattention\.attention\.[qk]_pos_embed$"
)
_INV_FREQ = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")
_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")
_SHARD_GLOBS = ("model-*-of-*.safetensors", "pytorch_model-*-of-*.bin")


def checkpoint_files(path: str | Path) -> list[Path]:
    """The weight files of a checkpoint folder (or a single file), in shard order."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise WeightsError("checkpoint folder not found", path)
    for name in _INDEX_FILES:
        index = path / name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise WeightsError(f"not a shard index ({exc})", index) from exc
            files = [path / f for f in dict.fromkeys(weight_map.values())]
            for f in files:
                if not f.is_file():
                    raise WeightsError(f"shard listed in {name} is missing", f)
            return files
    for name in _SINGLE_FILES:
        if (path / name).is_file():
            return [path / name]
    for pattern in _SHARD_GLOBS:
        shards = sorted(path.glob(pattern))
        if shards:
            return shards
    raise WeightsError("no model.safetensors / pytorch_model*.bin weights (or index) found", path)


def iter_tensors(file: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors of one weight file, read lazily (memory-mapped)."""
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open handles are not iterable)
                    yield key, handle.get_tensor(key)
        except OSError as exc:
            raise WeightsError(f"not a readable safetensors file ({exc})", file) from exc
        return
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (not a zip file), EOFError...
        raise WeightsError(f"not a readable checkpoint ({type(exc).__name__}: {exc})", file) from exc
    if not isinstance(state, dict):
        raise WeightsError(f"holds a {type(state).__name__}, not a state dict", file)
    yield from state.items()


def default_device_dtype(device: str | torch.device | None, dtype: torch.dtype | None):
    """CUDA when available; float16 on GPU (the precision of the official RQ-VQA run), float32 on CPU."""
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def load_owl2(
    path: str | Path,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    load_8bit: bool = False,
    config: Owl2Config | None = None,
) -> MplugOwl2:
    """Build mPLUG-Owl2 from a checkpoint folder (``config.json`` + shards) or file, in eval mode.

    ``load_8bit`` replaces every ``nn.Linear`` except ``lm_head`` by bitsandbytes LLM.int8 layers (threshold
    6.0), as the official loader did for the released RQ-VQA features; it needs CUDA and ``bitsandbytes``.
    """
    path = Path(path)
    dev, dtype = default_device_dtype(device, dtype)
    if config is None:
        config = Owl2Config.from_checkpoint_dir(path if path.is_dir() else path.parent)
    files = checkpoint_files(path)
    with torch.device("meta"):
        model = MplugOwl2(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    seen: set[str] = set()
    unexpected: list[str] = []
    for file in files:
        batch: dict[str, torch.Tensor] = {}
        for key, tensor in iter_tensors(file):
            if not isinstance(tensor, torch.Tensor):
                raise WeightsError(f"entry {key!r} is a {type(tensor).__name__}, not a tensor", file)
            if key not in expected:
                if not _INV_FREQ.match(key):
                    unexpected.append(key)
                continue
            if tuple(tensor.shape) != expected[key]:
                raise WeightsError(
                    f"{key} has shape {tuple(tensor.shape)}, the model expects {expected[key]}", file
                )
            batch[key] = tensor.to(device=dev, dtype=dtype)
            seen.add(key)
        if unexpected:
            raise WeightsError(f"{len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:5])}", file)
        model.load_state_dict(batch, strict=False, assign=True)
        del batch
    missing = [k for k in expected if k not in seen and not _POS_EMBED.match(k)]
    if missing:
        raise WeightsError(
            f"{len(missing)} keys missing from the checkpoint, e.g. {', '.join(missing[:5])}", path
        )
    # Only the sin-cos buffers absent from the checkpoint are still on the CPU (computed at construction).
    model.to(device=dev, dtype=dtype)
    model.eval().requires_grad_(False)
    if load_8bit:
        quantize_8bit(model)
    return model


def quantize_8bit(model: MplugOwl2, threshold: float = 6.0) -> None:
    """Swap every ``nn.Linear`` but ``lm_head`` for ``bitsandbytes.nn.Linear8bitLt`` (weights quantised on
    their device; activations keep the model's dtype, float16 on CUDA as upstream). CUDA is the official
    setting; bitsandbytes >= 0.45 also runs LLM.int8 on the CPU (checked here with a one-row probe)."""
    try:
        import bitsandbytes as bnb
    except ImportError as exc:
        raise ConfigError("8-bit loading needs bitsandbytes: pip install 'rqvqa[int8]'") from exc
    device = model.lm_head.weight.device
    if device.type != "cuda":
        _probe_cpu_int8(bnb)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, nn.Linear) or child is model.lm_head:
                continue
            layer = bnb.nn.Linear8bitLt(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                has_fp16_weights=False,
                threshold=threshold,
            )
            layer.weight = bnb.nn.Int8Params(
                child.weight.data.to("cpu", torch.float16), requires_grad=False, has_fp16_weights=False
            )
            if child.bias is not None:
                layer.bias = nn.Parameter(child.bias.data.to(torch.float16), requires_grad=False)
            setattr(parent, child_name, layer.to(device))


def _probe_cpu_int8(bnb) -> None:  # noqa: ANN001 (module)
    """Refuse early, with a clear message, where this bitsandbytes has no CPU LLM.int8 kernels."""
    try:
        layer = bnb.nn.Linear8bitLt(8, 4, bias=False, has_fp16_weights=False, threshold=6.0)
        layer.weight = bnb.nn.Int8Params(torch.ones(4, 8, dtype=torch.float16), requires_grad=False)
        layer = layer.to("cpu")
        out = layer(torch.ones(1, 8))
    except Exception as exc:  # bitsandbytes raises several types when a backend is missing
        raise ConfigError(
            f"bitsandbytes {getattr(bnb, '__version__', '?')} cannot run LLM.int8 on the CPU "
            f"({type(exc).__name__}); use a CUDA device or bitsandbytes >= 0.45"
        ) from None
    if not torch.allclose(out.float(), torch.full((1, 4), 8.0), atol=0.1):
        raise ConfigError("bitsandbytes' CPU LLM.int8 path gives wrong results here; use a CUDA device")

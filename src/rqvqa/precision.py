"""Compute precisions by name (what `--dtype` gives): one place that turns "float16" into a torch dtype."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rqvqa.errors import ConfigError

if TYPE_CHECKING:
    import torch


def torch_dtype(value: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype from itself or its name ("float16", "bfloat16", "float32"); None stays None."""
    if value is None:
        return None
    import torch

    if isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"unknown dtype {value!r} (float32, float16, bfloat16)")
    return dtype

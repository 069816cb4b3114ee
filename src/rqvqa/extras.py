"""The optional parts of the install (`pip install 'rqvqa[EXTRA]'`): which modules each extra brings, and the
one-line error that names the extra when one of them is missing.

`pip install rqvqa` is the offline core: the models that need no network (`lite`, `lite-v1`, `videval*`,
`brisque`, `niqe`), the diagnosis, the pipeline and the CSV / JSON Lines outputs. Everything else is an extra
(pyproject.toml lists the packages); finding out whether one is installed imports nothing.
"""

from __future__ import annotations

import importlib.util

from rqvqa.errors import ConfigError
from rqvqa.registry import MODELS_EXTRA, needs_extra

#: extra -> the top-level modules it installs (the first missing one is named in the error)
EXTRAS: dict[str, tuple[str, ...]] = {
    MODELS_EXTRA: (
        "torch",
        "torchvision",
        "timm",
        "open_clip",
        "safetensors",
        "sentencepiece",
        "huggingface_hub",
    ),
    "int8": ("bitsandbytes",),
    "parquet": ("pyarrow",),
    "benchmark": ("sklearn", "joblib"),
    "xlsx": ("openpyxl",),
    "report": ("matplotlib",),
    "serve": ("fastapi", "starlette", "uvicorn", "multipart"),
    "ray": ("ray",),
}


def installed(module: str) -> bool:
    """Whether `module` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-imported module
        return False


def missing_module(extra: str) -> str | None:
    """The first module of `extra` that is not installed (None: the extra is there). Imports nothing."""
    return next((m for m in EXTRAS[extra] if not installed(m)), None)


def require(extra: str, what: str, module: str | None = None) -> None:
    """Raise a one-line `ConfigError` naming the extra when `extra` (or only its `module`, where that is all
    `what` needs) is not installed; call it before anything is written."""
    module = missing_module(extra) if module is None else (None if installed(module) else module)
    if module is not None:
        raise ConfigError(needs_extra(what, extra, module))


def extra_of(module: str | None) -> str | None:
    """The extra that installs `module` (a dotted name is looked up by its top level), or None."""
    top = (module or "").partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def explain(exc: ImportError, what: str) -> str | None:
    """The one-line message for an import that failed because an extra is missing (None when the missing
    module belongs to no extra: a real defect, reported as such)."""
    # only an absent module: "cannot import name X from torch" is a version mismatch, not a missing extra
    extra = extra_of(exc.name) if isinstance(exc, ModuleNotFoundError) else None
    if extra is None:
        return None
    return needs_extra(what, extra, str(exc.name).partition(".")[0])

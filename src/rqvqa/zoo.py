"""The model zoo: video quality predictors by name, behind one interface (`rqvqa predict --model NAME`).

A predictor scores one video file and says how to read the score:

- `name`: registry name (`lite`, `niqe`, `brisque`, ...);
- `lower_better`: True for distortion measures (NIQE, BRISQUE), False for MOS-like scores;
- `score_range`: (low, high) of the usual output range (either end None when open), `scale`: its meaning;
- `predict(path) -> Prediction(score, per_second, extra)`: the video score, one score per second of video
  (may be empty for models without a temporal breakdown) and JSON-friendly details.

Constructors take `weights` (a folder or file, None for the packaged/default weights) and `device`
("cpu", "cuda", ...) as keywords; models with nothing to load or no accelerator path may ignore them.

Adding a model (5 lines): in your module

    from rqvqa.zoo import Prediction, Predictor, register_predictor

    @register_predictor
    class MyPredictor(Predictor):
        name, lower_better, score_range, scale = "mymodel", False, (1.0, 5.0), "MOS (1-5)"
        def predict(self, path): return Prediction(score=..., per_second=[...], extra={})

then add the module name to `_PREDICTOR_MODULES` below; modules are imported only on first lookup, so a
model's heavy dependencies cost nothing until it is used.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rqvqa.errors import ConfigError


@dataclass
class Prediction:
    """The output of a predictor for one video."""

    score: float
    #: one score per second; None for a second the model could not measure (flat content, too small)
    per_second: list[float | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Predictor(ABC):
    name: ClassVar[str]
    lower_better: ClassVar[bool]
    score_range: ClassVar[tuple[float | None, float | None]]
    scale: ClassVar[str]
    #: one-line description for `--help` listings
    description: ClassVar[str] = ""

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str = "cpu"):
        self.weights = weights
        self.device = device

    @abstractmethod
    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        """Score one video file. Raises `rqvqa.errors.VideoError` for unreadable videos."""

    @classmethod
    def card(cls) -> dict[str, Any]:
        """What the predictor declares, JSON-friendly."""
        return {
            "name": cls.name,
            "lower_better": cls.lower_better,
            "score_range": list(cls.score_range),
            "scale": cls.scale,
            "description": cls.description,
        }


_REGISTRY: dict[str, type[Predictor]] = {}

# Modules that register predictors when imported (imported lazily, on first lookup).
_PREDICTOR_MODULES: list[str] = [
    # the light, offline models first: looking them up imports nothing else
    "rqvqa.lite",
    "rqvqa.baselines.predictors",
    "rqvqa.videval.predictors",
    "rqvqa.sources.fastvqa",
    "rqvqa.sources.qalign_predictor",
    "rqvqa.sources.liqe_predictor",
    "rqvqa.kvq_predictor",
]


def register_predictor(cls: type[Predictor]) -> type[Predictor]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"predictor {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


# Modules whose import failed (a missing optional dependency): reported when their model is asked for, so
# one broken model does not take the others (the offline `lite` above all) down with it.
_LOAD_ERRORS: dict[str, str] = {}


def _load_all(until: str | None = None) -> None:
    """Import the registering modules, stopping early once `until` is registered (keeps `lite` light)."""
    for module in _PREDICTOR_MODULES:
        if until is not None and until in _REGISTRY:
            return
        if module in _LOAD_ERRORS:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            _LOAD_ERRORS[module] = f"{type(exc).__name__}: {exc}"


def available_predictors() -> dict[str, type[Predictor]]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def create_predictor(name: str, **kwargs: Any) -> Predictor:
    """Instantiate the predictor `name` with constructor keywords (`weights`, `device`, model options)."""
    _load_all(until=name)
    if name not in _REGISTRY:
        predictors = available_predictors()
        broken = "; ".join(f"{m} failed to import ({e})" for m, e in _LOAD_ERRORS.items())
        hint = f" ({broken})" if broken else ""
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(predictors) or 'none'}{hint}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r} does not take these options ({exc})") from None

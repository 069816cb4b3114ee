"""The Python API: models by name, and what the zoo holds.

    import rqvqa
    rqvqa.list_models()                              # the zoo, with what can run now (imports no model)
    model = rqvqa.create_predictor("lite")
    model.predict("clip.mp4")                        # one video -> Prediction(score, per_second, extra)
    for row in model.predict_many(["videos/"], out="scores.parquet"):
        ...                                          # one result row per video, as each finishes
    model.predict_frames(frames, fps=30)             # frames already in memory, (T, H, W, 3) uint8 RGB

A plug-in model is a `rqvqa.registry.ModelCard` and a `rqvqa.predictor.Predictor` subclass:
`register_model(card, cls)`.
"""

from __future__ import annotations

import os
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.predictor import Predictor
from rqvqa.registry import REGISTRY, ModelCard, RegistryError, accepted_options


def model_card(name: str) -> ModelCard:
    """The declared card of model `name` (imports nothing)."""
    try:
        return REGISTRY.model(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def model_class(name: str) -> type[Predictor]:
    """The predictor class of model `name` (imports its module only; a network model without the `models`
    extra is a one-line `ConfigError` naming the extra)."""
    model_card(name)
    try:
        return REGISTRY.model_class(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def create_predictor(name: str, **options: Any) -> Predictor:
    """Instantiate model `name` with its options (each model's constructor lists them; `--list-models` and
    `docs/` describe them). An option the model does not take is refused, never ignored."""
    cls = model_class(name)
    unknown = sorted(set(options) - accepted_options(cls))
    if unknown:
        takes = ", ".join(sorted(accepted_options(cls))) or "no options"
        raise ConfigError(f"model {name!r} does not take {', '.join(unknown)} (it takes: {takes})")
    return cls(**options)


def register_model(card: ModelCard, cls: type[Predictor]) -> None:
    """Add a plug-in model to the zoo."""
    REGISTRY.add_model(card, cls)


def readiness(card: ModelCard, weights_dir: str | os.PathLike[str] | None = None) -> str:
    """Whether a model can run now: "offline" (nothing to load), "ready" (its weights are on disk), "needs
    extra" (the pip extra of its card is not installed: `card.extra`), "needs download" or "needs weights"
    (some file is missing; the latter has no direct URL). Looks only at the disk; imports no model."""
    from rqvqa import extras, weights

    if card.extra is not None and extras.missing_module(card.extra) is not None:
        return "needs extra"
    if not card.weights:
        return "offline"

    missing = [w for w in card.weights if weights.find(w, weights_dir) is None]
    if not missing:
        return "ready"
    downloadable = all(weights.get_entry(w).downloadable for w in missing)
    return "needs download" if downloadable else "needs weights"


def list_models(weights_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The zoo's models as JSON-friendly cards, with `status` (see `readiness`) and the pip `extra` each needs
    beyond the core install (None: `pip install rqvqa` runs it); imports no model."""
    out = []
    for card in REGISTRY.models():
        out.append(
            {
                "name": card.name,
                "family": card.family,
                "lower_better": card.lower_better,
                "score_range": list(card.score_range),
                "scale": card.scale,
                "description": card.description,
                "weights": list(card.weights),
                "extra": card.extra,
                "status": readiness(card, weights_dir),
            }
        )
    return out

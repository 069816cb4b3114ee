"""The model zoo and the one lazy registry mechanism behind it.

Two registries share one mechanism (`LazyRegistry`), each with its own kind in every name and message:

- **models** (`MODELS`, `create_predictor`): video quality predictors, `rqvqa predict --model NAME`. A model
  scores one video and says how to read the score.
- **feature sources** (`rqvqa.sources.base.FEATURE_SOURCES`, `create_source`): frozen extractors whose
  arrays feed the RQ-VQA regressor. `liqe` is both a model (a score) and a feature source (a 5-d vector);
  the registry a name is looked up in says which one is meant.

Every entry is declared by a `Card` (name, module, what it is) *before* anything is imported: listing the
zoo and rejecting an unknown name import neither torch nor any model module. A lookup imports only the
module of that one name.

A predictor scores one video file:

- `name`, `lower_better`, `score_range` (either end None when open), `scale` (its meaning): as on its card;
- `predict(path) -> Prediction(score, per_second, extra)`.

Constructors take `weights` (a folder or file, None for the packaged/default weights) and `device`
("cpu", "cuda", ...) as keywords; models with nothing to load or no accelerator path may ignore them.

Adding a model: in your module

    from rqvqa.zoo import Prediction, Predictor, register_predictor

    @register_predictor
    class MyPredictor(Predictor):
        name, lower_better, score_range, scale = "mymodel", False, (1.0, 5.0), "MOS (1-5)"
        def predict(self, path): return Prediction(score=..., per_second=[...], extra={})

and add its `Card` to `MODEL_CARDS` below (a class registered without a card, e.g. by a plug-in imported by
the user, is accepted too; it is then listed only once its module is imported).
"""

from __future__ import annotations

import importlib
import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from rqvqa.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Card:
    """What a registry entry is, declared without importing it."""

    name: str
    #: module whose import registers the class
    module: str
    description: str = ""
    #: weights registry names the entry reads (empty: runs offline, nothing to download)
    weights: tuple[str, ...] = ()
    #: listing fields of models (lower_better, score_range, scale); empty for feature sources
    info: dict[str, Any] = field(default_factory=dict)


class LazyRegistry(Generic[T]):
    """Named classes of one kind, imported on first lookup from their declared `Card`."""

    def __init__(self, kind: str, cards: Iterable[Card] = ()):
        self.kind = kind
        self._cards: dict[str, Card] = {c.name: c for c in cards}
        self._classes: dict[str, type[T]] = {}
        #: module -> why its import failed (a missing optional dependency); reported when asked for
        self.load_errors: dict[str, str] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: add `cls` under `cls.name`, checking it against its declared card."""
        name = cls.name  # type: ignore[attr-defined]
        known = self._classes.get(name)
        if known is not None and known is not cls:
            raise ConfigError(f"{self.kind} {name!r} registered twice")
        card = self._cards.get(name)
        if card is not None:
            # the declared card is the one home of the listing fields
            for key, value in {**card.info, "description": card.description}.items():
                setattr(cls, key, value)
        else:
            self._cards[name] = Card(name, cls.__module__, getattr(cls, "description", ""))
        self._classes[name] = cls
        return cls

    def names(self) -> list[str]:
        """Every declared name, without importing anything."""
        return sorted(self._cards)

    def card(self, name: str) -> Card:
        if name not in self._cards:
            raise ConfigError(self._unknown(name))
        return self._cards[name]

    def cards(self) -> list[Card]:
        return [self._cards[n] for n in self.names()]

    def _unknown(self, name: str) -> str:
        broken = "; ".join(f"{m} failed to import ({e})" for m, e in self.load_errors.items())
        hint = f" ({broken})" if broken else ""
        return (
            f"unknown {self.kind} {name!r}; available {self.kind}s: {', '.join(self.names()) or 'none'}{hint}"
        )

    def _import(self, module: str) -> None:
        if module in self.load_errors:
            return
        try:
            importlib.import_module(module)
        except ImportError as exc:
            self.load_errors[module] = f"{type(exc).__name__}: {exc}"

    def get(self, name: str) -> type[T]:
        """The class registered as `name` (imports its module)."""
        card = self.card(name)
        if name not in self._classes:
            self._import(card.module)
        if name not in self._classes:
            why = self.load_errors.get(card.module, f"{card.module} did not register it")
            raise ConfigError(f"{self.kind} {name!r} is unavailable: {why}")
        return self._classes[name]

    def classes(self) -> dict[str, type[T]]:
        """Every class that can be imported (a module failing to import is left out and remembered)."""
        for card in list(self._cards.values()):
            if card.name not in self._classes:
                self._import(card.module)
        return {n: self._classes[n] for n in self.names() if n in self._classes}

    def create(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)


def accepted_options(cls: type) -> set[str]:
    """Keyword parameters a class's constructor accepts (a model's or a feature source's), following
    ``**kwargs`` up the class hierarchy (a subclass that forwards ``*args, **kwargs`` accepts what its base
    class takes)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


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
    #: True when `predict` is plain CPU work on a light object: collection engines then run it whole in
    #: their worker processes (the predictor is pickled once per worker)
    cpu_only: ClassVar[bool] = False
    #: codec `predict_frames` writes in-memory frames with (lossless by default)
    frames_codec: ClassVar[dict[str, Any]] = {"codec": "ffv1"}

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str = "cpu"):
        self.weights = weights
        self.device = device

    @abstractmethod
    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        """Score one video file. Raises `rqvqa.errors.VideoError` for unreadable videos."""

    # ---- the two stages the collection engines schedule apart (`rqvqa.pipeline`)

    def cpu_stage(self) -> Callable[[str], Any] | None:
        """A picklable callable doing this model's CPU work for one video file (decode, sampling, CPU
        features) in a worker process; its result goes to `finish` in the process that holds the networks.
        None: the whole `predict` runs where the model is."""
        return self.predict if self.cpu_only else None

    def finish(self, prepared: Any) -> Prediction:
        """Turn what `cpu_stage()` returned into the prediction (default: it already is the prediction)."""
        if not isinstance(prepared, Prediction):
            raise TypeError(f"{self.name}: finish() got {type(prepared).__name__}, expected a Prediction")
        return prepared

    def finish_many(self, prepared: list[Any]) -> list[Prediction]:
        """`finish` over several videos at once. Models with networks override it to run one batched forward
        over the videos (same per-video results as one at a time)."""
        return [self.finish(p) for p in prepared]

    def weights_id(self) -> str:
        """Which weights produced the scores (a file or folder name; "default" for the packaged/registry
        ones): with the model name, the identity `--resume` matches rows on."""
        return "default" if self.weights is None else os.path.basename(os.fspath(self.weights).rstrip("/\\"))

    # ---- the Python API for collections and in-memory frames

    def predict_many(self, videos: Iterable[str | os.PathLike[str]] | str, **options: Any) -> Iterator[dict]:
        """Score many videos, yielding one result row (`rqvqa.results`) per video as each finishes.

        `videos`: paths, folders, globs or manifests (see `rqvqa.pipeline.inputs`); `options`: those of
        `rqvqa.pipeline.score_collection` (`engine="local"|"sequential"|"ray"`, `workers`, `out`,
        `resume`...). A failing video is an error row; the others go on."""
        from rqvqa.pipeline import score_collection

        yield from score_collection(self, videos, **options)

    def predict_frames(self, frames: np.ndarray, fps: float) -> Prediction:
        """Score frames already in memory: `frames` uint8 RGB, shape (T, H, W, 3), at `fps` frames per second.

        The frames are written to a temporary video with `frames_codec` (lossless FFV1 unless the model
        reads the coded stream itself, as `lite` does) and scored like a file."""
        from rqvqa.pipeline.frames import score_frames

        return score_frames(self, frames, fps)

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


def _model(name, module, lower_better, score_range, scale, description, weights=()) -> Card:
    info = {"lower_better": lower_better, "score_range": tuple(score_range), "scale": scale}
    return Card(name, module, description, tuple(weights), info)


_ONE_ALIGN = (
    "qalign-one-align-1",
    "qalign-one-align-2",
    "qalign-one-align-config",
    "qalign-one-align-tokenizer",
)

#: every model of the zoo, the light offline ones first. The card is the one home of a model's listing
#: fields: `register_predictor` sets them on the class.
MODEL_CARDS: tuple[Card, ...] = (
    _model(
        "lite",
        "rqvqa.lite",
        False,
        (1.0, 5.0),
        "MOS (1 bad - 5 excellent), VIDEVAL All-Combined scale",
        "VIDEVAL_light480_3fps features -> released All-Combined VIDEVAL_light SVR; flags out-of-distribution"
        " inputs",
    ),
    _model(
        "lite-v1",
        "rqvqa.lite",
        False,
        (1.0, 5.0),
        "MOS (1 bad - 5 excellent), KoNViD-1k scale",
        "the first lite model: BRISQUE + bit budget -> SVR on KoNViD-1k (fast; misranks re-encodes)",
    ),
    _model(
        "videval",
        "rqvqa.videval.predictors",
        False,
        (1.0, 5.0),
        "MOS (1 bad - 5 excellent), VIDEVAL All-Combined scale",
        "VIDEVAL features (every 2nd frame) -> released All-Combined SVR (offline, CPU)",
    ),
    _model(
        "videval-light",
        "rqvqa.videval.predictors",
        False,
        (1.0, 5.0),
        "MOS (1 bad - 5 excellent), VIDEVAL All-Combined scale",
        "VIDEVAL_light720_6fps features -> released All-Combined SVR (offline, CPU)",
    ),
    _model(
        "brisque",
        "rqvqa.baselines.predictors",
        True,
        (0.0, 100.0),
        "BRISQUE (LIVE DMOS-like, 0 best; can leave 0-100)",
        "BRISQUE with the official LIVE-trained SVR, mean over one frame per second",
    ),
    _model(
        "niqe",
        "rqvqa.baselines.predictors",
        True,
        (0.0, None),
        "NIQE distance to the pristine model (0 best)",
        "NIQE with the official pristine model, mean over one frame per second",
    ),
    _model(
        "fastvqa",
        "rqvqa.sources.fastvqa",
        False,
        (0.0, 1.0),
        "FAST-VQA-B score rescaled to 0-1 as the official vqa.py does (raw score in extra)",
        "FAST-VQA-B (Video Swin-T with fragment attention): 4 clips of 7x7 fragments, seeded",
        ("fastvqa-b",),
    ),
    _model(
        "qalign",
        "rqvqa.sources.qalign_predictor",
        False,
        (1.0, 5.0),
        "Q-Align quality, 1 (bad) to 5 (excellent)",
        "Q-Align / OneAlign (mPLUG-Owl2, 8.2 B): 1 frame per second in one slot of the video prompt",
        _ONE_ALIGN,
    ),
    _model(
        "liqe",
        "rqvqa.sources.liqe_predictor",
        False,
        (1.0, 5.0),
        "LIQE quality expectation (1 = bad ... 5 = perfect), mean over one key frame per second",
        "LIQE image quality (CLIP ViT-B/32, 495 prompts, 15 patches per frame) averaged over seconds",
        ("liqe",),
    ),
    _model(
        "rqvqa-kvq",
        "rqvqa.kvq_predictor",
        False,
        (1.0, 5.0),
        "KVQ MOS (1-5; raw regressor output, unbounded)",
        "RQ-VQA (NTIRE 2024 winner): Swin-B+BoT with SlowFast, Q-Align, LIQE, FAST-VQA",
        (*(f"rqvqa-kvq-{k}" for k in range(1, 11)), "slowfast-r50", "liqe", "fastvqa-b", *_ONE_ALIGN),
    ),
)

MODELS: LazyRegistry[Predictor] = LazyRegistry("model", MODEL_CARDS)
register_predictor = MODELS.register


def available_predictors() -> dict[str, type[Predictor]]:
    """Every model class that imports (this imports every model module; `list_models` does not)."""
    return MODELS.classes()


def create_predictor(name: str, **kwargs: Any) -> Predictor:
    """Instantiate the model `name` with constructor keywords (`weights`, `device`, model options)."""
    cls = MODELS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r} does not take these options ({exc})") from None


def readiness(card: Card, weights_dir: str | os.PathLike[str] | None = None) -> str:
    """Whether a model can run now: "offline" (nothing to load), "ready" (its weights are on disk),
    "needs download" or "needs weights" (some file is missing; the latter has no direct URL). Looks only
    at the disk; imports no model."""
    if not card.weights:
        return "offline"
    from rqvqa import weights

    missing = [w for w in card.weights if weights.find(w, weights_dir) is None]
    if not missing:
        return "ready"
    downloadable = all(weights.get_entry(w).downloadable for w in missing)
    return "needs download" if downloadable else "needs weights"


def list_models(weights_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The zoo's models as JSON-friendly cards, with `status` (see `readiness`); imports no model."""
    out = []
    for card in MODELS.cards():
        entry = {"name": card.name, **card.info, "description": card.description}
        entry["score_range"] = list(entry.get("score_range", (None, None)))
        entry["weights"] = list(card.weights)
        entry["status"] = readiness(card, weights_dir)
        out.append(entry)
    return out

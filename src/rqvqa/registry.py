"""What rqvqa can run, declared as plain data, and the lazy lookup behind it.

Every model family is one package under `rqvqa.families` whose `__init__` declares, importing nothing but this
module (so listing them costs no torch, no network, no model code):

- `MODELS`: `ModelCard`s, one per name `rqvqa predict --model NAME` accepts;
- `SOURCES`: `SourceCard`s, the frozen feature sources the RQ-VQA regressor reads (`rqvqa extract`);
- `WEIGHTS`: `WeightsEntry`s, the checkpoint files the family reads (where they come from, how big);
- `GROUPS` (optional): names that stand for several weights entries (`rqvqa weights download qalign`).

`FAMILIES` below lists the family packages: adding a family is adding its package and one line here. A class
is named by its card as ``"module:Class"`` and imported only when that one name is looked up.

A `Card` is what one *instance* runs (the declared card plus the weights, options and preprocessing it was
built with): the one identity that result rows, `/v1/models`, listings and `--resume` use.

This module imports nothing else of rqvqa; every other module may import it.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: the family packages, in listing order (one line per family)
FAMILIES: tuple[str, ...] = (
    "rqvqa.families.lite",
    "rqvqa.families.videval",
    "rqvqa.families.classic",
    "rqvqa.families.fastvqa",
    "rqvqa.families.qalign",
    "rqvqa.families.liqe",
    "rqvqa.families.slowfast",
    "rqvqa.families.stats",
    "rqvqa.families.rqvqa",
)

#: the pip extra that holds the networks (torch, timm, open-clip...): `pip install 'rqvqa[models]'`
MODELS_EXTRA = "models"


def needs_extra(what: str, extra: str, module: str) -> str:
    """The one-line error of something asked for without the pip extra it needs (`rqvqa.extras`)."""
    return f"{what} needs the {extra} extra: pip install 'rqvqa[{extra}]' (missing module {module!r})"


class RegistryError(LookupError):
    """An unknown or unavailable name. The message is one line; the API and the CLI report it as a
    configuration error."""


@dataclass(frozen=True)
class ModelCard:
    """A model the zoo offers, declared without importing it."""

    name: str
    #: the family package's short name ("liqe", "classic", ...)
    family: str
    #: the predictor class, "module:Class"
    predictor: str
    description: str
    lower_better: bool
    #: (low, high); either end None when open
    score_range: tuple[float | None, float | None]
    #: what the score means
    scale: str
    #: weights entries the model reads (empty: runs offline, nothing to download)
    weights: tuple[str, ...] = ()
    #: the pip extra it needs beyond the core install (None: the core is enough)
    extra: str | None = None


@dataclass(frozen=True)
class SourceCard:
    """A frozen feature source of the RQ-VQA regressor, declared without importing it."""

    name: str
    family: str
    #: the source class, "module:Class"
    source: str
    #: feature dimension (per frame, chunk or video)
    dim: int
    weights: tuple[str, ...] = ()
    extra: str | None = MODELS_EXTRA


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint file. `size`/`sha256` are None unless published or measured on the real file."""

    name: str
    filename: str
    description: str
    #: direct-download URLs, tried in order
    urls: tuple[str, ...] = ()
    #: pages where a person can fetch the file (Google Drive, Baidu, OneDrive, Dropbox viewer)
    pages: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    #: approximate size for display only (never checked)
    size_hint: str = ""
    licence: str = "unknown"
    #: sources / predictors / models that read this file
    used_by: tuple[str, ...] = ()
    #: folder inside the cache (to keep generic names such as HF shard names apart)
    subdir: str = ""
    #: registry name of the archive that holds this file, and the file's path inside it
    archive: str | None = None
    member: str | None = None
    #: Hugging Face Hub repository and path inside it: fetched with huggingface_hub into the HF cache
    hf_repo: str | None = None
    hf_filename: str | None = None

    @property
    def relpath(self) -> Path:
        return Path(self.subdir) / self.filename

    @property
    def downloadable(self) -> bool:
        return bool(self.urls) or self.archive is not None or self.hf_repo is not None

    def where_from(self) -> str:
        """Human-readable origin, for error messages."""
        if self.archive is not None:
            return f"the archive {self.archive!r} (member {self.member})"
        if self.hf_repo is not None:
            return f"the Hugging Face Hub ({self.hf_repo}, {self.hf_filename or self.filename})"
        return " or ".join(self.urls + self.pages) or "no known URL"


@dataclass(frozen=True)
class Card:
    """What one predictor instance actually runs.

    `name` is what rows and listings show (a trained ensemble has its own); `weights` says which weights
    (a file or folder name, "packaged" for weights shipped in the package, "default" for the registry's);
    `options` are the options that shape the numbers, as used; `preprocessing` how frames become inputs. Rows,
    `/v1/models` and `--resume` read these fields and nothing else.
    """

    name: str
    family: str
    description: str
    lower_better: bool
    score_range: tuple[float | None, float | None]
    scale: str
    weights: str = "default"
    options: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # frozen all the way down: copies of the mappings, checked to be JSON values
        for name in ("options", "preprocessing"):
            value = dict(getattr(self, name))
            json.dumps(value, allow_nan=False, sort_keys=True)
            object.__setattr__(self, name, _FrozenDict(value))

    @classmethod
    def of(cls, model: ModelCard, **fields: Any) -> Card:
        """The card of an instance of `model` (`fields` override or add: weights, options, name...)."""
        base = {
            "name": model.name,
            "family": model.family,
            "description": model.description,
            "lower_better": model.lower_better,
            "score_range": tuple(model.score_range),
            "scale": model.scale,
        }
        return cls(**{**base, **fields})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score_range"] = list(self.score_range)
        out["options"] = dict(self.options)
        out["preprocessing"] = dict(self.preprocessing)
        return out


class _FrozenDict(dict):
    """A dict that refuses changes (a card's options cannot drift from what runs)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a card is frozen")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(_hashable(self))

    def __reduce__(self):
        return (_FrozenDict, (dict(self),))


def _hashable(value: Any) -> Any:
    """`value` with its dicts as key-sorted tuples and its lists as tuples: equal values give equal hashes
    (as dict equality has it: 1 and 1.0 alike)."""
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value


def load_object(target: str) -> Any:
    """Import ``"module:Name"`` and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def accepted_options(cls: type) -> set[str]:
    """Keyword parameters a class's constructor accepts, following ``**kwargs`` up the class hierarchy (a
    subclass that forwards ``**kwargs`` accepts what its base class takes)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


class Registry:
    """Every declared model, source, weights entry and group, read from the family packages on first use."""

    def __init__(self, families: Iterable[str] = FAMILIES):
        self.families = tuple(families)
        self._models: dict[str, ModelCard] = {}
        self._sources: dict[str, SourceCard] = {}
        self._weights: dict[str, WeightsEntry] = {}
        self._groups: dict[str, tuple[str, ...]] = {}
        self._classes: dict[str, type] = {}
        #: "module:Class" -> why importing it failed (a missing optional dependency), reported when asked for
        self.load_errors: dict[str, str] = {}
        #: "module:Class" -> the module whose absence made that import fail
        self._missing: dict[str, str | None] = {}
        self._loaded = False

    # ------------------------------------------------------------------------------------- declarations

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package in self.families:
            module = importlib.import_module(package)
            for card in getattr(module, "MODELS", ()):
                self.add_model(card)
            for card in getattr(module, "SOURCES", ()):
                self.add_source(card)
            for entry in getattr(module, "WEIGHTS", ()):
                self.add_weights(entry)
            for name, members in getattr(module, "GROUPS", {}).items():
                self._groups[name] = tuple(members)

    def add_model(self, card: ModelCard, cls: type | None = None) -> ModelCard:
        """Declare a model (a family or a plug-in); `cls` gives its class directly instead of importing it."""
        self._load()
        known = self._models.get(card.name)
        if known is not None and known != card:
            raise RegistryError(f"model {card.name!r} declared twice")
        self._models[card.name] = card
        if cls is not None:
            self._classes[card.predictor] = cls
        return card

    def add_source(self, card: SourceCard, cls: type | None = None) -> SourceCard:
        self._load()
        known = self._sources.get(card.name)
        if known is not None and known != card:
            raise RegistryError(f"feature source {card.name!r} declared twice")
        self._sources[card.name] = card
        if cls is not None:
            self._classes[card.source] = cls
        return card

    def add_weights(self, entry: WeightsEntry, *, replace: bool = False) -> WeightsEntry:
        """Declare a checkpoint file (tests and plug-ins too); a different entry under a known name needs
        `replace`."""
        self._load()
        known = self._weights.get(entry.name)
        if known is not None and known != entry and not replace:
            raise RegistryError(f"weights {entry.name!r} declared twice")
        if entry.archive is not None and entry.member is None:
            reason = "an archive member needs its path inside the archive"
            raise RegistryError(f"weights {entry.name!r}: {reason}")
        self._weights[entry.name] = entry
        return entry

    def remove_weights(self, name: str) -> None:
        self._load()
        self._weights.pop(name, None)

    # --------------------------------------------------------------------------------------------- lookups

    def model_names(self) -> list[str]:
        self._load()
        return sorted(self._models)

    def models(self) -> list[ModelCard]:
        return [self._models[n] for n in self.model_names()]

    def model(self, name: str) -> ModelCard:
        self._load()
        if name not in self._models:
            raise RegistryError(self._unknown("model", name, self.model_names()))
        return self._models[name]

    def source_names(self) -> list[str]:
        self._load()
        return sorted(self._sources)

    def sources(self) -> list[SourceCard]:
        return [self._sources[n] for n in self.source_names()]

    def source(self, name: str) -> SourceCard:
        self._load()
        if name not in self._sources:
            raise RegistryError(self._unknown("feature source", name, self.source_names()))
        return self._sources[name]

    def weights_entries(self) -> list[WeightsEntry]:
        self._load()
        return list(self._weights.values())

    def weights(self, name: str) -> WeightsEntry:
        self._load()
        if name not in self._weights:
            groups = f"; groups: {', '.join(self._groups)}" if self._groups else ""
            raise RegistryError(f"unknown weights {name!r}; known: {', '.join(self._weights)}{groups}")
        return self._weights[name]

    def groups(self) -> dict[str, tuple[str, ...]]:
        self._load()
        return dict(self._groups)

    def expand(self, name: str) -> list[str]:
        """The weights entries behind `name`: a group's members, or the entry itself."""
        self._load()
        if name in self._groups:
            return list(self._groups[name])
        self.weights(name)
        return [name]

    def _unknown(self, kind: str, name: str, names: list[str]) -> str:
        broken = "; ".join(f"{m} failed to import ({e})" for m, e in self.load_errors.items())
        hint = f" ({broken})" if broken else ""
        return f"unknown {kind} {name!r}; available {kind}s: {', '.join(names) or 'none'}{hint}"

    # --------------------------------------------------------------------------------------------- classes

    def load(self, target: str, what: str, extra: str | None = None) -> type:
        """The class behind ``"module:Class"`` (imported now); `what` names it in the error. A class whose
        card declares a pip `extra` and whose import misses a module outside rqvqa says to install that
        extra."""
        if target in self._classes:
            return self._classes[target]
        if target not in self.load_errors:
            try:
                self._classes[target] = load_object(target)
                return self._classes[target]
            except ImportError as exc:
                self.load_errors[target] = f"{type(exc).__name__}: {exc}"
                self._missing[target] = exc.name if isinstance(exc, ModuleNotFoundError) else None
        module = self._missing.get(target)
        if extra is not None and module and module.partition(".")[0] != "rqvqa":  # not a defect of ours
            raise RegistryError(needs_extra(what, extra, module.partition(".")[0]))
        raise RegistryError(f"{what} is unavailable: {self.load_errors[target]}")

    def model_class(self, name: str) -> type:
        card = self.model(name)
        return self.load(card.predictor, f"model {name!r}", card.extra)

    def source_class(self, name: str) -> type:
        card = self.source(name)
        return self.load(card.source, f"feature source {name!r}", card.extra)


#: the registry every part of rqvqa reads
REGISTRY = Registry()

"""The predictor interface: what every model of every family implements, and the two stages it runs in.

A predictor

- **declares what it reads from a video** (`products()`: named `rqvqa.video.decode.Product`s such as key
  frames, chunks, fragments, VIDEVAL frame features); the base class owns the **decode stage** (`decoder()`:
  one streaming decode producing them, a picklable callable that collection engines run in their CPU workers);
- **scores a batch of decoded videos** (`score(batch)`: the model stage, batched across videos where the model
  can; same results as one video at a time), after `setup()` loaded what it needs (networks are loaded where
  the model stage runs, never pickled to another process: `loaded` names the attributes left out of a pickle);
- carries a frozen **card** (`rqvqa.registry.Card`): the name, weights, options and preprocessing it runs
  with, the one identity rows, listings and `--resume` use;
- declares its **resources** (`resources()`): GPU or not, memory, whether the model stage holds networks (a
  Ray engine then gives it actors that load it once).

Constructors take the options of their model and refuse the rest (a keyword they would ignore is a
`TypeError`, reported by `rqvqa.api.create_predictor` as a configuration error).

`predict`, `predict_frames` and `predict_many` are the same two stages: one video (file or frames in memory)
in this thread, or a collection through `rqvqa.pipeline`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rqvqa.diagnosis.product import Diagnosis
from rqvqa.registry import REGISTRY, Card
from rqvqa.results import Prediction
from rqvqa.video.decode import DEFAULT_WORKERS, DIAGNOSIS, ArraySource, Decoded, Decoder, Product, VideoSource

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Resources:
    """What the model stage of a predictor needs where it runs."""

    #: GPUs per model-stage worker (0: CPU only)
    gpus: int = 0
    #: approximate memory of the loaded model stage, MiB (None: small)
    memory_mb: int | None = None
    #: True when the model stage holds networks worth loading once per worker (Ray then runs it in actors);
    #: False when it is light arithmetic on the decoded products (it then runs where the rows are made)
    networks: bool = False


class Predictor(ABC):
    #: the registry name this class is declared under (`rqvqa.registry.ModelCard`)
    name: ClassVar[str]
    #: attributes holding what `setup` loads (networks): not pickled, loaded again where the predictor lands
    loaded: ClassVar[tuple[str, ...]] = ()

    #: what this instance runs (set by the constructor through `make_card`)
    card: Card

    def make_card(
        self,
        weights: str = "default",
        options: Mapping[str, Any] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Card:
        """The instance card: the declared card of `name` plus what this instance runs with."""
        return Card.of(
            REGISTRY.model(self.name),
            weights=weights,
            options=dict(options or {}),
            preprocessing=dict(preprocessing or {}),
            **fields,
        )

    # ---- the two stages

    @abstractmethod
    def products(self) -> dict[str, Product]:
        """What the model reads from a video, by name (the keys of `Decoded.products` in `score`)."""

    def decoder(self, workers: int = DEFAULT_WORKERS, diagnosis: bool = True) -> Decoder:
        """The decode stage: a picklable callable (video -> `Decoded`). `diagnosis`: add the artifact
        diagnosis of the frames decoded (a passive product: it never makes the decode longer)."""
        products = dict(self.products())
        if diagnosis:
            products[DIAGNOSIS] = Diagnosis()
        return Decoder(tuple(sorted(products.items())), workers)

    def setup(self) -> None:  # noqa: B027 - models without networks have nothing to load
        """Load what the model stage needs (idempotent; runs where the model stage runs)."""

    @abstractmethod
    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        """The model stage: one prediction per decoded video, in order."""

    def resources(self) -> Resources:
        return Resources()

    # ---- one video, many videos

    def predict(self, video: str | os.PathLike[str] | VideoSource, diagnosis: bool = True) -> Prediction:
        """Score one video file (or `VideoSource`) in this thread; the prediction carries the video's facts
        and (unless `diagnosis=False`) its artifact diagnosis. Raises `rqvqa.errors.VideoError` for an
        unreadable video (the pipeline turns that into an error row instead)."""
        decoded = self.decoder(diagnosis=diagnosis)(video)
        self.setup()
        return decoded.describe(self.score([decoded])[0])

    def predict_frames(self, frames: np.ndarray, fps: float, diagnosis: bool = True) -> Prediction:
        """Score frames already in memory: `frames` uint8 RGB, shape (T, H, W, 3), at `fps` frames per second.
        They go straight into the decode stage (no file, no re-encode), so a frame model sees exactly these
        pixels."""
        return self.predict(ArraySource(frames, fps), diagnosis)

    def predict_many(self, videos: Iterable[str | os.PathLike[str]] | str, **options: Any) -> Iterator[dict]:
        """Score many videos, yielding one result row (`rqvqa.results`) per video as each finishes.

        `videos`: paths, folders, globs or manifests (see `rqvqa.pipeline.inputs`); `options`: those of
        `rqvqa.pipeline.score_collection` (`engine="local"|"sequential"|"ray"`, `workers`, `batch_size`,
        `out`, `resume`, `diagnosis=False`...). A failing video is an error row; the others go on."""
        from rqvqa.pipeline.engines import score_collection

        yield from score_collection(self, videos, **options)

    # ---- pickling: the loaded networks stay behind

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self.loaded}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in self.loaded:
            self.__dict__.setdefault(name, None)

"""The stage plumbing every engine shares: jobs, failures carried across processes, running the decode stage
and the model stage of one or several videos without ever raising for one video's failure."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rqvqa.pipeline.keys import file_key
from rqvqa.results import one_line
from rqvqa.video.decode import Decoded


@dataclass(frozen=True)
class Job:
    """One video to score: where it is and which bytes it holds (`size`, `content_key`: filled by the decode
    stage's worker, `run_stage`; None when it cannot be read)."""

    index: int
    path: str
    size: int | None = None
    content_key: str | None = None
    #: keywords for the decode stage of this video (e.g. `extract` decodes only what is missing for it)
    options: dict[str, Any] | None = None
    #: whether the worker computes the content key (rows carry it; `extract` does not need it)
    keyed: bool = True
    #: why this input is not a video path (a bad manifest cell, `rqvqa.pipeline.inputs.BadInput`): its row
    #: is this error, nothing is opened
    problem: str | None = None


class Stages(Protocol):
    """What an engine runs: a `rqvqa.predictor.Predictor` (scores) or any object with the same stages
    (`extract` fills a feature store this way)."""

    def decoder(self) -> Callable[..., Any]: ...  # a Predictor's also takes diagnosis=False

    def setup(self) -> None: ...

    def score(self, batch: list[Any]) -> list[Any]: ...

    def resources(self) -> Any: ...


#: what an engine yields per video: the job, its outcome (the model stage's result, or a `Failure`), the
#: seconds of its CPU stage and its share of the model stage (None when a stage did not run)
Done = tuple["Job", Any, float | None, float | None]


@dataclass
class Failure:
    """A stage's exception, carried across processes as text (one line + the traceback for --debug)."""

    reason: str
    traceback: str = ""
    #: the video's facts when it was decoded (a model-stage failure)
    video: dict[str, Any] | None = None


def stage_decoder(stages: Stages, diagnosis: bool = True) -> Callable[..., Any]:
    """The decode stage of `stages`; without the artifact diagnosis when `diagnosis` is False (a predictor's
    `decoder(diagnosis=False)`)."""
    return stages.decoder() if diagnosis else stages.decoder(diagnosis=False)  # type: ignore[call-arg]


def run_stage(stage: Any, job: Job) -> tuple[Job, Any, float]:
    """Run the decode stage on one video, never raising: (the job with its size and content key, payload or
    Failure, seconds). The content key is computed here, in the worker (`rqvqa.pipeline.keys`: bounded, so
    a huge file never blocks the others).

    With one BLAS/OpenMP thread: engines get their parallelism from processes (and the decode stage from its
    own frame threads); more BLAS threads per process only oversubscribe the cores, and a different thread
    count can change the last bit of a sum, so every engine runs the decode stage this way and gives the same
    bytes."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    if job.problem is not None:
        return job, Failure(job.problem), 0.0
    if job.keyed:
        size, key = file_key(job.path)
        job = replace(job, size=size, content_key=key)
    try:
        with threadpool_limits(limits=1):
            payload = stage(job.path, **(job.options or {}))
    except Exception as exc:  # noqa: BLE001 - isolation: any failure becomes this video's row
        payload = Failure(one_line(exc, job.path), traceback.format_exc())
    return job, payload, time.perf_counter() - start


def finish_batch(stages: Stages, payloads: list[Any], paths: list[str]) -> tuple[list[Any], float]:
    """The model stage over several videos' decoded payloads; a failing video fails alone. Predictions
    carry their video's facts and diagnosis (`Decoded.describe`), failures the facts."""
    start = time.perf_counter()
    try:
        outcomes = stages.score(payloads)
    except Exception:  # noqa: BLE001 - a batch failure: redo the videos one by one to isolate it
        outcomes = []
        for payload, path in zip(payloads, paths, strict=True):
            try:
                outcomes.extend(stages.score([payload]))
            except Exception as exc:  # noqa: BLE001
                video = payload.video if isinstance(payload, Decoded) else None
                outcomes.append(Failure(one_line(exc, path), traceback.format_exc(), video))
    for i, (payload, outcome) in enumerate(zip(payloads, outcomes, strict=True)):
        if isinstance(payload, Decoded):
            outcomes[i] = payload.describe(outcome)
    return outcomes, time.perf_counter() - start


class Batcher:
    """Decoded videos waiting for the model stage, scored `batch_size` at a time."""

    def __init__(self, stages: Stages, batch_size: int):
        self.stages, self.batch_size = stages, batch_size
        self.ready: list[tuple[Job, Any, float]] = []

    def add(self, job: Job, payload: Any, cpu_s: float) -> None:
        self.ready.append((job, payload, cpu_s))

    def full(self) -> bool:
        return len(self.ready) >= self.batch_size

    def flush(self) -> Iterator[Done]:
        """Score one batch (at most `batch_size` of the waiting videos)."""
        batch, self.ready = self.ready[: self.batch_size], self.ready[self.batch_size :]
        if not batch:
            return
        outcomes, model_s = finish_batch(self.stages, [p for _, p, _ in batch], [j.path for j, _, _ in batch])
        for (job, _, cpu_s), outcome in zip(batch, outcomes, strict=True):
            yield job, outcome, cpu_s, model_s / len(batch)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)

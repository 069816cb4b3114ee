"""Scoring a collection: jobs, result rows and the engines that schedule them.

Every engine runs the same two stages per video and builds the same row (timings aside):

1. **CPU stage** (`Predictor.cpu_stage()`: decode, sampling, CPU features; for CPU-only models the whole
   prediction), in worker processes;
2. **model stage** (`Predictor.finish_many`: the networks, batched across videos), where the model lives.

Engines:

- `sequential`: both stages in this process, one video after the other (the reference for tests);
- `local` (default): a pool of `workers` processes runs the CPU stage while this process runs the model stage;
  at most `2 * workers` videos are in flight, so memory is bounded whatever the collection size. A worker
  that dies (OOM killer, segfault in a decoder, SIGKILL) breaks the pool: the pool is rebuilt and the videos
  that were in flight are retried one at a time, so the one that kills its worker is identified and gets an
  error row after `MAX_ATTEMPTS` deaths; the others are scored normally. Every video gets exactly one row.
- `ray`: `rqvqa.pipeline.ray_engine` (Ray Data; optional extra `rqvqa[ray]`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.pipeline.inputs import iter_inputs
from rqvqa.pipeline.keys import content_key
from rqvqa.pipeline.outputs import open_writer, row_key
from rqvqa.results import error_row, ok_row, one_line
from rqvqa.zoo import Prediction, Predictor

ENGINES = ("local", "sequential", "ray")
#: deaths of a worker process on one video before that video gets an error row
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Job:
    """One video to score: where it is and which bytes it holds (None when it cannot be read)."""

    index: int
    path: str
    size: int | None = None
    content_key: str | None = None
    #: why the file cannot be scored before any decode (unreadable), else None
    unreadable: str | None = None


@dataclass
class Failure:
    """A stage's exception, carried across processes as text (one line + the traceback for --debug)."""

    reason: str
    traceback: str = ""


def make_job(index: int, path: str) -> Job:
    try:
        size, key = content_key(path)
    except OSError as exc:
        reason = f"{path}: {exc.strerror or exc}" if exc.strerror else one_line(exc, path)
        return Job(index, path, unreadable=reason)
    return Job(index, path, size, key)


def make_row(
    predictor: Predictor,
    job: Job,
    outcome: Prediction | Failure,
    cpu_s: float | None = None,
    model_s: float | None = None,
    debug: bool = False,
) -> dict[str, Any]:
    """The result row of one video (`rqvqa.results`) plus the collection columns."""
    if isinstance(outcome, Failure):
        extra = {"traceback": outcome.traceback} if debug and outcome.traceback else None
        row = error_row(predictor, job.path, outcome.reason, extra)
    else:
        row = ok_row(predictor, job.path, outcome)
    row.update(
        weights=predictor.weights_id(),
        size=job.size,
        content_key=job.content_key,
        timings={"cpu_s": _seconds(cpu_s), "model_s": _seconds(model_s)},
    )
    return row


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def run_stage(stage: Any, path: str) -> tuple[Any, float]:
    """Run a CPU stage on one video, never raising: (payload or Failure, seconds)."""
    start = time.perf_counter()
    try:
        payload = stage(path)
    except Exception as exc:  # noqa: BLE001 - isolation: any failure becomes this video's row
        payload = Failure(one_line(exc, path), traceback.format_exc())
    return payload, time.perf_counter() - start


def finish_batch(predictor: Predictor, payloads: list[Any], paths: list[str]) -> tuple[list[Any], float]:
    """The model stage over several videos' CPU payloads; a failing video fails alone."""
    start = time.perf_counter()
    try:
        outcomes = predictor.finish_many(payloads)
    except Exception:  # noqa: BLE001 - a batch failure: redo the videos one by one to isolate it
        outcomes = []
        for payload, path in zip(payloads, paths, strict=True):
            try:
                outcomes.append(predictor.finish(payload))
            except Exception as exc:  # noqa: BLE001
                outcomes.append(Failure(one_line(exc, path), traceback.format_exc()))
    return outcomes, time.perf_counter() - start


# ------------------------------------------------------------------------------------------- sequential


def _whole(predictor: Predictor):
    """The CPU stage of a model without one: the whole predict, run where the model is."""
    return predictor.cpu_stage() or predictor.predict


def run_sequential(predictor: Predictor, jobs: Iterable[Job], batch_size: int = 1, debug: bool = False):
    stage = predictor.cpu_stage()
    for job in jobs:
        if stage is None:
            outcome, cpu_s = run_stage(predictor.predict, job.path)
            yield make_row(predictor, job, outcome, cpu_s, 0.0, debug)
            continue
        payload, cpu_s = run_stage(stage, job.path)
        if isinstance(payload, Failure):
            yield make_row(predictor, job, payload, cpu_s, None, debug)
            continue
        (outcome,), model_s = finish_batch(predictor, [payload], [job.path])
        yield make_row(predictor, job, outcome, cpu_s, model_s, debug)


# ------------------------------------------------------------------------------------------------ local

_STAGE: Any = None


def _init_worker(stage: Any) -> None:
    global _STAGE
    _STAGE = stage


def _work(path: str) -> tuple[Any, float, int]:
    payload, seconds = run_stage(_STAGE, path)
    return payload, seconds, os.getpid()


class _Pool:
    """A process pool that can be rebuilt after a worker dies."""

    def __init__(self, stage: Any, workers: int):
        self.stage, self.workers = stage, workers
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn: the parent may hold torch threads and CUDA state, which fork would copy half-initialised
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(self.stage,)
        )

    def rebuild(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()

    def pids(self) -> list[int]:
        return [p.pid for p in (self.executor._processes or {}).values()]  # noqa: SLF001 - for fault tests

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def run_local(
    predictor: Predictor,
    jobs: Iterable[Job],
    workers: int | None = None,
    batch_size: int = 1,
    debug: bool = False,
    max_pending: int | None = None,
    on_pool: Any = None,
) -> Iterator[dict[str, Any]]:
    """The local engine (see the module docstring). `on_pool(pool)` is called once the pool exists (tests
    use it to kill a worker)."""
    stage = predictor.cpu_stage()
    if stage is None:  # nothing to run apart from the model: the sequential engine is the local one
        yield from run_sequential(predictor, jobs, batch_size, debug)
        return
    workers = workers or default_workers()
    max_pending = max_pending or 2 * workers
    pool = _Pool(stage, workers)
    if on_pool is not None:
        on_pool(pool)
    source = iter(jobs)
    pending: dict[Future, Job] = {}
    suspects: deque[Job] = deque()  # in flight when a worker died: retried one at a time
    solo: Job | None = None  # the suspect running alone: a death now is its own
    deaths: dict[int, int] = {}
    ready: list[tuple[Job, Any, float]] = []
    exhausted = False
    try:
        while True:
            if suspects or solo is not None:
                if solo is None and not pending:
                    solo = suspects.popleft()
                    pending[pool.executor.submit(_work, solo.path)] = solo
            else:
                while not exhausted and len(pending) < max_pending:
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                    else:
                        pending[pool.executor.submit(_work, job.path)] = job
            # the model stage, batched across videos, runs while the workers decode the next ones
            if ready and (len(ready) >= batch_size or not pending):
                batch, ready = ready[:batch_size], ready[batch_size:]
                outcomes, model_s = finish_batch(
                    predictor, [p for _, p, _ in batch], [j.path for j, _, _ in batch]
                )
                for (job, _, cpu_s), outcome in zip(batch, outcomes, strict=True):
                    yield make_row(predictor, job, outcome, cpu_s, model_s / len(batch), debug)
                continue
            if not pending:
                if exhausted and not suspects:
                    return
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                job = pending.pop(future)
                try:
                    payload, cpu_s, _pid = future.result()
                except BrokenProcessPool:
                    broken = True
                    if job is solo:
                        solo = None
                        deaths[job.index] = deaths.get(job.index, 0) + 1
                        if deaths[job.index] >= MAX_ATTEMPTS:
                            reason = (
                                f"{job.path}: its worker process died {MAX_ATTEMPTS} times while scoring it"
                            )
                            yield make_row(predictor, job, Failure(reason), None, None, debug)
                            continue
                    suspects.append(job)
                    continue
                if job is solo:
                    solo = None
                if isinstance(payload, Failure):
                    yield make_row(predictor, job, payload, cpu_s, None, debug)
                else:
                    ready.append((job, payload, cpu_s))
            if broken:
                suspects.extend(pending.values())
                pending.clear()
                solo = None
                pool.rebuild()
    finally:
        pool.close()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------------------ the runner


def iter_jobs(videos: Any, skip: set[tuple[str, str, str]] | None, predictor: Predictor) -> Iterator[Job]:
    """Jobs for every input, leaving out those whose row is already in the result file."""
    model, weights = predictor.name, predictor.weights_id()
    for index, path in enumerate(iter_inputs(videos)):
        job = make_job(index, path)
        if skip and (job.content_key or f"path:{job.path}", model, weights) in skip:
            continue
        yield job


def score_collection(
    predictor: Predictor,
    videos: Any,
    *,
    engine: str = "local",
    workers: int | None = None,
    batch_size: int = 1,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    address: str | None = None,
    debug: bool = False,
) -> Iterator[dict[str, Any]]:
    """Score every video of `videos` (paths, folders, globs, manifests, "-"; see `rqvqa.pipeline.inputs`),
    yielding one row per video as it finishes; with `out`, each row is appended to that file first.
    `resume`: skip the videos whose row is already in `out` (same content key, model and weights)."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")
    if resume and out is None:
        raise ConfigError("--resume needs --out FILE (the results to continue)")
    writer = open_writer(out, resume=resume) if out is not None else None
    skip = writer.done() if writer is not None and resume else None
    jobs = iter_jobs(videos, skip, predictor)

    def readable(jobs_in: Iterable[Job]) -> Iterator[Job | dict[str, Any]]:
        for job in jobs_in:
            yield make_row(predictor, job, Failure(job.unreadable), debug=debug) if job.unreadable else job

    if engine == "sequential":
        rows = _with_unreadable(readable(jobs), lambda js: run_sequential(predictor, js, batch_size, debug))
    elif engine == "local":
        rows = _with_unreadable(
            readable(jobs), lambda js: run_local(predictor, js, workers, batch_size, debug)
        )
    else:
        from rqvqa.pipeline.ray_engine import run_ray

        rows = _with_unreadable(
            readable(jobs),
            lambda js: run_ray(
                predictor, js, address=address, workers=workers, batch_size=batch_size, debug=debug
            ),
        )
    try:
        for row in rows:
            if writer is not None:
                writer.write(row)
            yield row
    finally:
        if writer is not None:
            writer.close()


def _with_unreadable(items: Iterator[Job | dict[str, Any]], engine) -> Iterator[dict[str, Any]]:
    """Rows of unreadable files go straight out; the engine gets the readable jobs."""
    early: deque[dict[str, Any]] = deque()

    def jobs() -> Iterator[Job]:
        for item in items:
            if isinstance(item, Job):
                yield item
            else:
                early.append(item)

    for row in engine(jobs()):
        while early:
            yield early.popleft()
        yield row
    while early:
        yield early.popleft()


__all__ = ["ENGINES", "Job", "make_row", "row_key", "score_collection"]

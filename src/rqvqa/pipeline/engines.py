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

import itertools
import multiprocessing
import os
import stat
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from rqvqa.errors import ConfigError
from rqvqa.pipeline.inputs import iter_inputs
from rqvqa.pipeline.keys import content_key
from rqvqa.pipeline.outputs import open_writer, resume_key
from rqvqa.results import error_row, ok_row, one_line
from rqvqa.video.reader import Limits, current_limits, video_limits
from rqvqa.zoo import Prediction, Predictor

ENGINES = ("local", "sequential", "ray")
#: deaths of a worker process on one video before that video gets an error row
MAX_ATTEMPTS = 2
#: how often the local engine checks that its workers are alive while it waits
WATCHDOG_S = 2.0


@dataclass(frozen=True)
class Job:
    """One video to score: where it is and which bytes it holds (None when it cannot be read)."""

    index: int
    path: str
    size: int | None = None
    content_key: str | None = None
    #: keywords for the CPU stage of this video (e.g. `extract` decodes only what is missing for it)
    options: dict[str, Any] | None = None


class Stages(Protocol):
    """What an engine runs: a `Predictor` (scores) or any object with the same stage methods (`extract` fills
    a feature store this way)."""

    cpu_only: bool

    def cpu_stage(self) -> Callable[[str], Any] | None: ...

    def finish(self, prepared: Any) -> Any: ...

    def finish_many(self, prepared: list[Any]) -> list[Any]: ...

    def predict(self, path: str) -> Any: ...


#: what an engine yields per video: the job, its outcome (the model stage's result, or a `Failure`), the
#: seconds of its CPU stage and its share of the model stage (None when a stage did not run)
Done = tuple["Job", Any, float | None, float | None]


@dataclass
class Failure:
    """A stage's exception, carried across processes as text (one line + the traceback for --debug)."""

    reason: str
    traceback: str = ""


def make_job(index: int, path: str) -> Job:
    """The job of one input; only a regular file is hashed (a FIFO would block, a folder has no content):
    anything else keeps no key and gets its error row, with the reader's own reason, from the CPU stage."""
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            size, key = content_key(path)
            return Job(index, path, size, key)
    except OSError:
        pass
    return Job(index, path)


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


def run_stage(
    stage: Any, path: str, options: dict[str, Any] | None = None, *, one_thread: bool = True
) -> tuple[Any, float]:
    """Run a CPU stage on one video, never raising: (payload or Failure, seconds).

    `one_thread`: with one BLAS/OpenMP thread. Engines get their parallelism from processes; several BLAS
    threads per process only oversubscribe the cores, and a different thread count can change the last bit
    of a sum, so every engine runs CPU stages this way and gives the same bytes. (A whole `predict` run where
    the networks live keeps the library's threads: `one_thread=False`.)"""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    try:
        if one_thread:
            with threadpool_limits(limits=1):
                payload = stage(path, **(options or {}))
        else:
            payload = stage(path, **(options or {}))
    except Exception as exc:  # noqa: BLE001 - isolation: any failure becomes this video's row
        payload = Failure(one_line(exc, path), traceback.format_exc())
    return payload, time.perf_counter() - start


def finish_batch(predictor: Stages, payloads: list[Any], paths: list[str]) -> tuple[list[Any], float]:
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


def run_sequential(predictor: Stages, jobs: Iterable[Job], batch_size: int = 1) -> Iterator[Done]:
    stage = predictor.cpu_stage()
    for job in jobs:
        if stage is None:
            outcome, cpu_s = run_stage(predictor.predict, job.path, one_thread=False)
            yield job, outcome, cpu_s, 0.0
            continue
        payload, cpu_s = run_stage(stage, job.path, job.options)
        if isinstance(payload, Failure):
            yield job, payload, cpu_s, None
            continue
        (outcome,), model_s = finish_batch(predictor, [payload], [job.path])
        yield job, outcome, cpu_s, model_s


# ------------------------------------------------------------------------------------------------ local

_STAGE: Any = None


def _init_worker(stage: Any, limits: Limits) -> None:
    """Worker set-up: the stage to run, and the caller's video limits (a context variable does not cross
    processes)."""
    global _STAGE
    _STAGE = stage
    video_limits(**asdict(limits)).__enter__()  # for the worker's whole life


def _work(path: str, options: dict[str, Any] | None) -> tuple[Any, float, int]:
    payload, seconds = run_stage(_STAGE, path, options)
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
            self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.stage, current_limits()),
        )

    def processes(self) -> list[multiprocessing.Process]:
        return list((self.executor._processes or {}).values())  # noqa: SLF001 - liveness, not control

    def lost_a_worker(self) -> bool:
        """A worker died without the executor noticing (it can miss a death while a task is being handed
        over, and then waits forever)."""
        return any(p.exitcode is not None for p in self.processes())

    def rebuild(self) -> None:
        old = self.processes()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in old:  # the survivors of a broken pool hold nothing worth waiting for
            process.kill()
        self.executor = self._new()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def run_local(
    predictor: Stages,
    jobs: Iterable[Job],
    workers: int | None = None,
    batch_size: int = 1,
    max_pending: int | None = None,
) -> Iterator[Done]:
    """The local engine (see the module docstring)."""
    stage = predictor.cpu_stage()
    if stage is None:  # nothing to run apart from the model: the sequential engine is the local one
        yield from run_sequential(predictor, jobs, batch_size)
        return
    workers = workers or default_workers()
    max_pending = max_pending or 2 * workers
    pool = _Pool(stage, workers)
    source = iter(jobs)
    pending: dict[Future, Job] = {}
    suspects: deque[Job] = deque()  # in flight when a worker died: retried one at a time
    solo: Job | None = None  # the suspect running alone: a death now is its own
    deaths: dict[int, int] = {}
    ready: list[tuple[Job, Any, float]] = []
    exhausted = False
    try:
        while True:
            lost: list[Job] = []  # in flight (or being handed over) when a worker died

            def submit(job: Job, lost: list[Job] = lost) -> None:
                try:
                    pending[pool.executor.submit(_work, job.path, job.options)] = job
                except BrokenProcessPool:  # a worker died since the last wait
                    lost.append(job)

            if suspects or solo is not None:
                if solo is None and not pending:
                    solo = suspects.popleft()
                    submit(solo)
            else:
                while not exhausted and len(pending) < max_pending and not lost:
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                    else:
                        submit(job)
            # the model stage, batched across videos, runs while the workers decode the next ones
            if ready and (len(ready) >= batch_size or not pending):
                batch, ready = ready[:batch_size], ready[batch_size:]
                outcomes, model_s = finish_batch(
                    predictor, [p for _, p, _ in batch], [j.path for j, _, _ in batch]
                )
                for (job, _, cpu_s), outcome in zip(batch, outcomes, strict=True):
                    yield job, outcome, cpu_s, model_s / len(batch)
                continue
            if not pending and not lost:
                if exhausted and not suspects:
                    return
                continue
            done = set()
            if not lost:
                done, _ = wait(pending, timeout=WATCHDOG_S, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    payload, cpu_s, _pid = future.result()
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                if job is solo:
                    solo = None
                if isinstance(payload, Failure):
                    yield job, payload, cpu_s, None
                else:
                    ready.append((job, payload, cpu_s))
            if lost or (not done and pool.lost_a_worker()):  # the watchdog: see _Pool.lost_a_worker
                lost.extend(pending.values())
                pending.clear()
                pool.rebuild()
                for job in lost:
                    if job is solo:  # it ran alone: the death is its own
                        deaths[job.index] = deaths.get(job.index, 0) + 1
                        if deaths[job.index] >= MAX_ATTEMPTS:
                            reason = (
                                f"{job.path}: its worker process died {MAX_ATTEMPTS} times while scoring it"
                            )
                            yield job, Failure(reason), None, None
                            continue
                    suspects.append(job)
                solo = None
    finally:
        pool.close()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------------------ the runner


def iter_jobs(videos: Any, skip: set[tuple[str, str, str]] | None, predictor: Predictor) -> Iterator[Job]:
    """Jobs for every input (numbered from 0), leaving out those whose row is already in the result file."""
    model, weights = predictor.name, predictor.weights_id()
    index = 0
    for path in iter_inputs(videos):
        job = make_job(index, path)
        if skip and resume_key(job.content_key, job.path, model, weights) in skip:
            continue
        yield job
        index += 1


def score_video(predictor: Predictor, path: str | os.PathLike[str], *, debug: bool = False) -> dict[str, Any]:
    """The row `rqvqa predict` gives one video, scored in this thread (the service's and the API's single
    video); never raises for a failure of this video (KeyboardInterrupt and SystemExit still propagate)."""
    ((job, outcome, cpu_s, model_s),) = run_sequential(predictor, [make_job(0, os.fspath(path))])
    return make_row(predictor, job, outcome, cpu_s, model_s, debug)


def run_engine(
    stages: Stages,
    jobs: Iterable[Job],
    engine: str = "local",
    workers: int | None = None,
    batch_size: int = 1,
    address: str | None = None,
) -> Iterator[Done]:
    """Run `stages` over `jobs` with the named engine, yielding each video's outcome as it finishes."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")
    jobs = iter(jobs)
    if engine == "local":
        # one video: the pool's start-up would cost more than it saves
        first = list(itertools.islice(jobs, 2))
        jobs = itertools.chain(first, jobs)
        if len(first) < 2:
            engine = "sequential"
    if engine == "sequential":
        return run_sequential(stages, jobs, batch_size)
    if engine == "local":
        return run_local(stages, jobs, workers, batch_size)
    from rqvqa.pipeline.ray_engine import run_ray

    return run_ray(stages, jobs, address=address, workers=workers, batch_size=batch_size)


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
    ordered: bool = False,
    debug: bool = False,
) -> Iterator[dict[str, Any]]:
    """Score every video of `videos` (paths, folders, globs, manifests, "-"; see `rqvqa.pipeline.inputs`),
    yielding one row per video as it finishes (`ordered`: in input order instead, holding back the rows
    that finish early); with `out`, each row is appended to that file as soon as it finishes.
    `resume`: skip the videos whose row is already in `out` (same content key, model and weights)."""
    if engine not in ENGINES:  # before the writer opens a file
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if resume and out is None:
        raise ConfigError("--resume needs --out FILE (the results to continue)")
    writer = open_writer(out, resume=resume) if out is not None else None
    skip = writer.done() if writer is not None and resume else None
    jobs = iter_jobs(videos, skip, predictor)
    held: dict[int, dict[str, Any]] = {}
    expected = 0  # job indices count the jobs scored, from 0
    try:
        for job, outcome, cpu_s, model_s in run_engine(predictor, jobs, engine, workers, batch_size, address):
            row = make_row(predictor, job, outcome, cpu_s, model_s, debug)
            if writer is not None:
                writer.write(row)
            if not ordered:
                yield row
                continue
            held[job.index] = row
            while expected in held:
                yield held.pop(expected)
                expected += 1
    finally:
        if writer is not None:
            writer.close()
    for index in sorted(held):
        yield held[index]


__all__ = ["ENGINES", "Job", "make_row", "run_engine", "score_collection"]

"""Scoring a collection: jobs, result rows and the engines that schedule them.

Every engine runs the same two stages per video and builds the same row (timings aside):

1. **decode stage** (`Predictor.decoder()`: one streaming decode producing what the model reads, with the
   per-frame work of the CPU models), in worker processes;
2. **model stage** (`Predictor.score`: the networks or regressors, batched across videos, `batch_size` videos
per
   call), where the model was set up.

Engines:

- `sequential`: both stages in this process, one video after the other (the reference for tests);
- `local` (default): a pool of `workers` processes runs the decode stage while this process runs the model
  stage;
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.pipeline.inputs import unique_inputs
from rqvqa.pipeline.outputs import open_writer, resume_key
from rqvqa.pipeline.stages import (
    Batcher,
    Done,
    Failure,
    Job,
    Stages,
    default_workers,
    run_stage,
    stage_decoder,
)
from rqvqa.results import Prediction, error_row, ok_row
from rqvqa.video.reader import Limits, current_limits, video_limits

ENGINES = ("local", "sequential", "ray")
#: deaths of a worker process on one video before that video gets an error row
MAX_ATTEMPTS = 2
#: how often the local engine checks that its workers are alive while it waits
WATCHDOG_S = 2.0


def make_row(
    card: Any,
    job: Job,
    outcome: Prediction | Failure,
    cpu_s: float | None = None,
    model_s: float | None = None,
    debug: bool = False,
) -> dict[str, Any]:
    """The result row of one video (`rqvqa.results`, identity from `card`) plus the collection columns."""
    if isinstance(outcome, Failure):
        extra = {"traceback": outcome.traceback} if debug and outcome.traceback else None
        row = error_row(card, job.path, outcome.reason, extra, outcome.video)
    else:
        row = ok_row(card, job.path, outcome)
    row.update(
        size=job.size,
        content_key=job.content_key,
        timings={"cpu_s": _seconds(cpu_s), "model_s": _seconds(model_s)},
    )
    return row


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


# ------------------------------------------------------------------------------------------- sequential


def run_sequential(
    stages: Stages, jobs: Iterable[Job], batch_size: int = 1, diagnosis: bool = True
) -> Iterator[Done]:
    decode = stage_decoder(stages, diagnosis)
    batcher = Batcher(stages, batch_size)
    for job in jobs:
        job, payload, cpu_s = run_stage(decode, job)
        if isinstance(payload, Failure):
            yield job, payload, cpu_s, None
            continue
        batcher.add(job, payload, cpu_s)
        if batcher.full():
            yield from batcher.flush()
    while batcher.ready:
        yield from batcher.flush()


# ------------------------------------------------------------------------------------------------ local

_STAGE: Any = None


def _init_worker(stage: Any, limits: Limits) -> None:
    """Worker set-up: the stage to run, and the caller's video limits (a context variable does not cross
    processes)."""
    global _STAGE
    _STAGE = stage
    video_limits(**asdict(limits)).__enter__()  # for the worker's whole life


def _work(job: Job) -> tuple[Job, Any, float, int]:
    return (*run_stage(_STAGE, job), os.getpid())


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
    stages: Stages,
    jobs: Iterable[Job],
    workers: int | None = None,
    batch_size: int = 1,
    max_pending: int | None = None,
    diagnosis: bool = True,
) -> Iterator[Done]:
    """The local engine (see the module docstring)."""
    workers = workers or default_workers()
    max_pending = max_pending or 2 * workers
    pool = _Pool(stage_decoder(stages, diagnosis), workers)
    batcher = Batcher(stages, batch_size)
    source = iter(jobs)
    pending: dict[Future, Job] = {}
    suspects: deque[Job] = deque()  # in flight when a worker died: retried one at a time
    solo: Job | None = None  # the suspect running alone: a death now is its own
    deaths: dict[int, int] = {}
    exhausted = False
    try:
        while True:
            lost: list[Job] = []  # in flight (or being handed over) when a worker died

            def submit(job: Job, lost: list[Job] = lost) -> None:
                try:
                    pending[pool.executor.submit(_work, job)] = job
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
            if batcher.ready and (batcher.full() or not pending):
                yield from batcher.flush()
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
                    keyed, payload, cpu_s, _pid = future.result()
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                if job is solo:
                    solo = None
                if isinstance(payload, Failure):
                    yield keyed, payload, cpu_s, None
                else:
                    batcher.add(keyed, payload, cpu_s)
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


# ------------------------------------------------------------------------------------------ the runner


def iter_jobs(
    videos: Any,
    skip: set[tuple[str, ...]] | None,
    card: Any,
    on_skip: Callable[[str], None] | None = None,
) -> Iterator[Job]:
    """Jobs for every input path (numbered from 0), once each: a path named twice (a glob and a manifest
    overlapping) gets one job; a path whose ok row is already in the result file (`skip`) none
    (`on_skip(path)` is told)."""
    index = 0
    for path in unique_inputs(videos):
        if skip and resume_key(path, card) in skip:
            if on_skip is not None:
                on_skip(path)
            continue
        yield Job(index, str(path), problem=getattr(path, "reason", None))
        index += 1


def score_video(
    predictor: Any, path: str | os.PathLike[str], *, debug: bool = False, diagnosis: bool = True
) -> dict[str, Any]:
    """The row `rqvqa predict` gives one video, scored in this thread (the service's and the API's single
    video); never raises for a failure of this video (KeyboardInterrupt and SystemExit still propagate)."""
    predictor.setup()
    ((job, outcome, cpu_s, model_s),) = run_sequential(
        predictor, [Job(0, os.fspath(path))], diagnosis=diagnosis
    )
    return make_row(predictor.card, job, outcome, cpu_s, model_s, debug)


def check_engine(engine: str, workers: int | None = None, batch_size: int = 1) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")


def run_engine(
    stages: Stages,
    jobs: Iterable[Job],
    engine: str = "local",
    workers: int | None = None,
    batch_size: int = 1,
    address: str | None = None,
    diagnosis: bool = True,
) -> Iterator[Done]:
    """Run `stages` over `jobs` with the named engine, yielding each video's outcome as it finishes. The model
    stage is set up first where it runs: here for the local and sequential engines (so a missing checkpoint is
    one error before any video), on the workers for Ray. `diagnosis`: the decode stage adds the artifact
    diagnosis (a predictor's; see `stage_decoder`)."""
    check_engine(engine, workers, batch_size)
    jobs = iter(jobs)
    if engine == "local":
        # one video: the pool's start-up would cost more than it saves
        first = list(itertools.islice(jobs, 2))
        jobs = itertools.chain(first, jobs)
        if len(first) < 2:
            engine = "sequential"
    if engine != "ray":
        stages.setup()
        runner = run_sequential if engine == "sequential" else run_local
        return runner(
            stages,
            jobs,
            batch_size=batch_size,
            diagnosis=diagnosis,
            **({"workers": workers} if engine == "local" else {}),
        )
    from rqvqa.pipeline.ray_engine import run_ray

    return run_ray(stages, jobs, address=address, workers=workers, batch_size=batch_size, diagnosis=diagnosis)


def score_collection(
    predictor: Any,
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
    diagnosis: bool = True,
    on_skip: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Score every video of `videos` (paths, folders, globs, manifests, "-"; see `rqvqa.pipeline.inputs`) with
    `predictor` (a `rqvqa.predictor.Predictor`), yielding one row per video as it finishes (`ordered`: in
    input
    order instead, holding back the rows that finish early); with `out`, each row is appended to that file as
    soon as it finishes. `resume`: skip the paths that already have an ok row in `out` (same model, weights
    and options); the others (error rows included) are scored again and their new row supersedes the old one
    (`rqvqa.pipeline.outputs.read_results` gives one row per path). `diagnosis`: rows carry the artifact
    diagnosis (False: `--no-diagnosis`). `on_skip(path)`: called for each path `resume` skips."""
    check_engine(engine, workers, batch_size)  # before the writer opens a file
    if resume and out is None:
        raise ConfigError("--resume needs --out FILE (the results to continue)")
    writer = open_writer(out, resume=resume) if out is not None else None
    skip = writer.done() if writer is not None and resume else None
    jobs = iter_jobs(videos, skip, predictor.card, on_skip)
    held: dict[int, dict[str, Any]] = {}
    expected = 0  # job indices count the jobs scored, from 0
    try:
        run = run_engine(predictor, jobs, engine, workers, batch_size, address, diagnosis)
        for job, outcome, cpu_s, model_s in run:
            row = make_row(predictor.card, job, outcome, cpu_s, model_s, debug)
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


__all__ = ["ENGINES", "Job", "make_row", "run_engine", "score_collection", "score_video"]

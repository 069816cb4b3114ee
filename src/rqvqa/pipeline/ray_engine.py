"""The Ray engine: the same two stages as the local engine, as a Ray Data streaming pipeline.

- CPU stage: `Dataset.map` tasks (1 CPU each), retried when their worker dies (`max_retries`);
- model stage: `map_batches` over an actor pool holding the predictor (`num_gpus=1` per actor when the
  predictor's device is CUDA), `batch_size` videos per call (one batched forward across videos), actors
  restarted and their calls retried when they die;
- rows: built in the driver from what comes back and written by the same writer as the local engine, so a
  `kill -9` of the driver loses nothing that finished and `--resume` continues the file.

Models that are CPU-only (`Predictor.cpu_only`, e.g. `lite`) need no model stage: the map tasks return their
predictions. Jobs go to Ray in windows of `WINDOW` videos, so the driver's memory stays bounded whatever the
collection size.

`address`: None starts a private local Ray runtime (with `workers` CPUs) and stops it at the end; "auto" or
"ray://host:port" joins an existing cluster (rqvqa must be installed on its nodes; inputs and outputs must be
on a filesystem every node sees, see docs/scale.md).
"""

from __future__ import annotations

import itertools
import os
import pickle
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.pipeline.engines import Done, Failure, Job, Stages, default_workers, finish_batch, run_stage

#: videos handed to Ray per dataset
WINDOW = 4096
#: retries of a CPU task or model call whose worker died
RETRIES = 3

INSTALL_HINT = "the Ray engine needs Ray: pip install 'rqvqa[ray]' (or pip install 'ray[data]')"


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _cpu_task(stage: Any):
    """The map function of the CPU stage: (job row) -> job row + pickled (payload, seconds)."""

    def run(item: dict[str, Any]) -> dict[str, Any]:
        payload, seconds = run_stage(stage, item["path"], pickle.loads(item["options"]))
        return {**item, "payload": pickle.dumps(payload), "cpu_s": seconds, "pid": os.getpid()}

    return run


class _ModelStage:
    """The actor of the model stage: holds the predictor, finishes batches of videos."""

    def __init__(self, predictor_bytes: bytes):
        self.predictor: Stages = pickle.loads(predictor_bytes)
        # a model without a CPU stage runs its whole predict here
        self.whole = self.predictor.cpu_stage() is None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        payloads = [pickle.loads(b) for b in batch["payload"]]
        if self.whole:
            timed = [run_stage(self.predictor.predict, path, one_thread=False) for path in batch["path"]]
            return {
                **{k: batch[k] for k in ("index", "path", "cpu_s")},
                "outcome": [pickle.dumps(o) for o, _ in timed],
                "model_s": [s for _, s in timed],
            }
        todo = [i for i, p in enumerate(payloads) if not isinstance(p, Failure)]
        outcomes: list[Any] = list(payloads)
        model_s = 0.0
        if todo:
            done, seconds = finish_batch(
                self.predictor, [payloads[i] for i in todo], [batch["path"][i] for i in todo]
            )
            model_s = seconds / len(todo)
            for i, outcome in zip(todo, done, strict=True):
                outcomes[i] = outcome
        return {
            **{k: batch[k] for k in ("index", "path", "cpu_s")},
            "outcome": [pickle.dumps(o) for o in outcomes],
            "model_s": [model_s if not isinstance(p, Failure) else None for p in payloads],
        }


def run_ray(
    predictor: Stages,
    jobs: Iterable[Job],
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 1,
) -> Iterator[Done]:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            options.update(num_cpus=workers or default_workers(), _node_ip_address="127.0.0.1")
        ray.init(address=address, **options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    plan = _Plan(predictor, workers, batch_size)
    try:
        source = iter(jobs)
        while window := list(itertools.islice(source, WINDOW)):
            yield from plan.score(ray, window)
    finally:
        if started:
            ray.shutdown()


class _Plan:
    """How one window of jobs becomes a Ray dataset, and how its rows come back."""

    def __init__(self, predictor: Stages, workers: int | None, batch_size: int):
        self.predictor, self.batch_size = predictor, batch_size
        self.workers = workers or default_workers()
        self.stage = predictor.cpu_stage()
        self.needs_actor = self.stage is None or not predictor.cpu_only
        self.use_gpu = str(getattr(predictor, "device", "cpu")).startswith("cuda")
        self.predictor_bytes = pickle.dumps(predictor) if self.needs_actor else b""

    def dataset(self, ray, window: list[Job]):
        items = [{"index": j.index, "path": j.path, "options": pickle.dumps(j.options)} for j in window]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        with warnings.catch_warnings():  # retry counts are only settable through ray_remote_args
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map(_cpu_task(self.stage or _skip), num_cpus=1, max_retries=RETRIES)
            if self.needs_actor:
                ds = ds.map_batches(
                    _ModelStage,
                    fn_constructor_args=(self.predictor_bytes,),
                    batch_size=self.batch_size,
                    concurrency=1 if self.use_gpu else max(1, self.workers // 2),
                    num_gpus=1 if self.use_gpu else 0,
                    num_cpus=0 if self.use_gpu else 1,
                    max_restarts=RETRIES,
                    max_task_retries=RETRIES,
                )
        return ds

    def done(self, job: Job, item: dict[str, Any]) -> Done:
        if self.needs_actor:
            outcome, model_s = pickle.loads(item["outcome"]), item["model_s"]
        else:
            outcome, model_s = pickle.loads(item["payload"]), None
            if not isinstance(outcome, Failure):
                (outcome,), model_s = finish_batch(self.predictor, [outcome], [job.path])
        return job, outcome, item["cpu_s"], model_s

    def score(self, ray, window: list[Job]) -> Iterator[Done]:
        """Rows of `window`. When Ray gives up on a task (its worker died `RETRIES` times), the videos
        without a row yet are split in halves and run again, down to the one that kills its workers, which
        gets an error row."""
        by_index = {job.index: job for job in window}
        try:
            for item in self.dataset(ray, window).iter_rows():
                job = by_index.pop(int(item["index"]))
                yield self.done(job, item)
        except Exception as exc:  # noqa: BLE001 - a system failure of the dataset (user errors are rows)
            rest = list(by_index.values())
            if len(rest) == 1:
                reason = f"{rest[0].path}: its Ray worker died {RETRIES + 1} times ({type(exc).__name__})"
                yield rest[0], Failure(reason), None, None
                return
            half = len(rest) // 2
            yield from self.score(ray, rest[:half])
            yield from self.score(ray, rest[half:])


def _skip(path: str) -> str:
    """The CPU stage of a model without one: nothing (the actor runs the whole `predict`)."""
    return path

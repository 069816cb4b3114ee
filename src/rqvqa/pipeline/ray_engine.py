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
from collections.abc import Iterable, Iterator
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.pipeline.engines import Failure, Job, default_workers, finish_batch, make_row, run_stage
from rqvqa.zoo import Predictor

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
        payload, seconds = run_stage(stage, item["path"])
        return {**item, "payload": pickle.dumps(payload), "cpu_s": seconds, "pid": os.getpid()}

    return run


class _ModelStage:
    """The actor of the model stage: holds the predictor, finishes batches of videos."""

    def __init__(self, predictor_bytes: bytes):
        self.predictor: Predictor = pickle.loads(predictor_bytes)
        # a model without a CPU stage runs its whole predict here
        self.whole = self.predictor.cpu_stage() is None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        payloads = [pickle.loads(b) for b in batch["payload"]]
        if self.whole:
            timed = [run_stage(self.predictor.predict, path) for path in batch["path"]]
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
    predictor: Predictor,
    jobs: Iterable[Job],
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 1,
    debug: bool = False,
) -> Iterator[tuple[Job, dict[str, Any]]]:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": debug}
        if address is None:
            options.update(num_cpus=workers or default_workers(), _node_ip_address="127.0.0.1")
        ray.init(address=address, **options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    stage = predictor.cpu_stage()
    needs_actor = stage is None or not predictor.cpu_only
    use_gpu = str(getattr(predictor, "device", "cpu")).startswith("cuda")
    predictor_bytes = pickle.dumps(predictor) if needs_actor else b""
    try:
        source = iter(jobs)
        while window := list(itertools.islice(source, WINDOW)):
            by_index = {job.index: job for job in window}
            items = [{"index": j.index, "path": j.path} for j in window]
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            ds = ds.map(_cpu_task(stage or _skip), num_cpus=1, max_retries=RETRIES)
            if needs_actor:
                ds = ds.map_batches(
                    _ModelStage,
                    fn_constructor_args=(predictor_bytes,),
                    batch_size=batch_size,
                    concurrency=1 if use_gpu else max(1, (workers or default_workers()) // 2),
                    num_gpus=1 if use_gpu else 0,
                    num_cpus=0 if use_gpu else 1,
                    max_restarts=RETRIES,
                    max_task_retries=RETRIES,
                )
            for row in ds.iter_rows():
                job = by_index[int(row["index"])]
                if needs_actor:
                    outcome, model_s = pickle.loads(row["outcome"]), row["model_s"]
                else:
                    outcome, model_s = pickle.loads(row["payload"]), None
                    if not isinstance(outcome, Failure):
                        (outcome,), model_s = finish_batch(predictor, [outcome], [job.path])
                yield job, make_row(predictor, job, outcome, row["cpu_s"], model_s, debug)
    finally:
        if started:
            ray.shutdown()


def _skip(path: str) -> str:
    """The CPU stage of a model without one: nothing (the actor runs the whole `predict`)."""
    return path

"""The Ray engine: the same two stages as the local engine, as a Ray Data streaming pipeline.

- decode stage: `Dataset.map` tasks (1 CPU each) running the predictor's `decoder()`, retried when their
  worker dies (`max_retries`);
- model stage, for predictors whose resources say they hold networks (`Resources.networks`): `map_batches`
  over an actor pool; each actor receives the predictor *without* its loaded networks (they are left out of
  its pickle), loads them once in `setup()` on the worker, and scores `batch_size` videos per call (one
  batched forward across videos); `Resources.gpus` GPUs per actor; actors restarted and their calls retried
  when they die. Light model stages (the SVRs of the CPU models) run in the driver on what the tasks return;
- rows: built in the driver from what comes back and written by the same writer as the local engine, so a
  `kill -9` of the driver loses nothing that finished and `--resume` continues the file.

Jobs go to Ray in windows of `WINDOW` videos, so the driver's memory stays bounded whatever the collection
size.

`address`: None starts a private local Ray runtime (with `workers` CPUs) and stops it at the end; "auto" or
"ray://host:port" joins an existing cluster (rqvqa must be installed on its nodes; inputs and outputs must be
on a filesystem every node sees, see docs/scale.md).
"""

from __future__ import annotations

import itertools
import pickle
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.pipeline.stages import (
    Done,
    Failure,
    Job,
    Stages,
    default_workers,
    finish_batch,
    run_stage,
    stage_decoder,
)

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


def _decode_task(decoder: Any):
    """The map function of the decode stage: (job row) -> job row + pickled (payload, seconds)."""

    def run(item: dict[str, Any]) -> dict[str, Any]:
        job, payload, seconds = run_stage(decoder, pickle.loads(item["job"]))
        return {**item, "job": pickle.dumps(job), "payload": pickle.dumps(payload), "cpu_s": seconds}

    return run


class _ModelStage:
    """The actor of the model stage: rebuilds the predictor (without networks), sets it up once, scores
    batches of decoded videos."""

    def __init__(self, predictor_bytes: bytes):
        self.predictor: Stages = pickle.loads(predictor_bytes)
        self.predictor.setup()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        payloads = [pickle.loads(b) for b in batch["payload"]]
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
            **{k: batch[k] for k in ("index", "path", "job", "cpu_s")},
            "outcome": [pickle.dumps(o) for o in outcomes],
            "model_s": [model_s if not isinstance(p, Failure) else None for p in payloads],
        }


def _actor_budget(ray, resources: Any, concurrency: int) -> tuple[int, int | None]:
    """(actors, memory per actor in bytes): the declared memory reserves room for each actor on the cluster,
    and no more actors start than that memory allows (at least one; a model larger than the whole cluster's
    memory resource gets no reservation rather than never being scheduled)."""
    if not resources.memory_mb:
        return concurrency, None
    need = int(resources.memory_mb) * 2**20
    total = int(ray.cluster_resources().get("memory", 0))
    if total < need:
        return 1, None
    return max(1, min(concurrency, total // need)), need


def run_ray(
    predictor: Stages,
    jobs: Iterable[Job],
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 1,
    diagnosis: bool = True,
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
    plan = _Plan(predictor, workers, batch_size, diagnosis)
    try:
        source = iter(jobs)
        while window := list(itertools.islice(source, WINDOW)):
            yield from plan.score(ray, window)
    finally:
        if started:
            ray.shutdown()


class _Plan:
    """How one window of jobs becomes a Ray dataset, and how its rows come back."""

    def __init__(self, predictor: Stages, workers: int | None, batch_size: int, diagnosis: bool = True):
        self.predictor, self.batch_size = predictor, batch_size
        self.workers = workers or default_workers()
        self.decoder = stage_decoder(predictor, diagnosis)
        self.resources = predictor.resources()
        self.actors = bool(self.resources.networks)
        if not self.actors:
            predictor.setup()  # light: the model stage runs here, on what the tasks return
        self.predictor_bytes = pickle.dumps(predictor) if self.actors else b""

    def dataset(self, ray, window: list[Job]):
        items = [{"index": j.index, "path": j.path, "job": pickle.dumps(j)} for j in window]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        with warnings.catch_warnings():  # retry counts are only settable through ray_remote_args
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map(_decode_task(self.decoder), num_cpus=1, max_retries=RETRIES)
            if self.actors:
                gpus = int(self.resources.gpus)
                wanted = 1 if gpus else max(1, self.workers // 2)
                concurrency, memory = _actor_budget(ray, self.resources, wanted)
                ds = ds.map_batches(
                    _ModelStage,
                    fn_constructor_args=(self.predictor_bytes,),
                    batch_size=self.batch_size,
                    concurrency=concurrency,
                    num_gpus=gpus,
                    num_cpus=0 if gpus else 1,
                    **({"memory": memory} if memory else {}),
                    max_restarts=RETRIES,
                    max_task_retries=RETRIES,
                )
        return ds

    def done(self, item: dict[str, Any]) -> Done:
        job = pickle.loads(item["job"])  # with its size and content key, from the decode task
        if self.actors:
            return job, pickle.loads(item["outcome"]), item["cpu_s"], item["model_s"]
        payload = pickle.loads(item["payload"])
        if isinstance(payload, Failure):
            return job, payload, item["cpu_s"], None
        (outcome,), model_s = finish_batch(self.predictor, [payload], [job.path])
        return job, outcome, item["cpu_s"], model_s

    def score(self, ray, window: list[Job]) -> Iterator[Done]:
        """Rows of `window`. When Ray gives up on a task (its worker died `RETRIES` times), the videos
        without a row yet are split in halves and run again, down to the one that kills its workers, which
        gets an error row."""
        by_index = {job.index: job for job in window}
        try:
            for item in self.dataset(ray, window).iter_rows():
                by_index.pop(int(item["index"]))
                yield self.done(item)
        except Exception as exc:  # noqa: BLE001 - a system failure of the dataset (user errors are rows)
            rest = list(by_index.values())
            if len(rest) == 1:
                reason = f"{rest[0].path}: its Ray worker died {RETRIES + 1} times ({type(exc).__name__})"
                yield rest[0], Failure(reason), None, None
                return
            half = len(rest) // 2
            yield from self.score(ray, rest[:half])
            yield from self.score(ray, rest[half:])

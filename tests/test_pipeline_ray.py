"""The Ray engine on a private local Ray runtime (2 CPUs, 127.0.0.1), started here and shut down after.

Skipped without Ray (`pip install 'rqvqa[ray]'`); slow (starting Ray takes 10-30 s on 2 loaded cores).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import REPO
from pipeline_helpers import N_GOOD, SlowLite, clean_rows, make_clips, starts, wait_for_busy_worker

from rqvqa.api import create_predictor
from rqvqa.pipeline import score_collection

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rqvqa[ray]')")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_runtime():
    # the workers import rqvqa and the test helpers (pickled stages) by name
    paths = os.pathsep.join([str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("ray-collection"))


@pytest.fixture(scope="module")
def sequential_rows(clips) -> list[dict]:
    return clean_rows(list(score_collection(create_predictor("lite"), [str(clips)], engine="sequential")))


def test_ray_engine_gives_the_sequential_rows(ray_runtime, clips, sequential_rows, tmp_path):
    out = tmp_path / "ray.jsonl"
    rows = list(score_collection(create_predictor("lite"), [str(clips)], engine="ray", out=out))
    assert len(rows) == N_GOOD + 2
    assert clean_rows(rows) == sequential_rows  # byte for byte, timings aside
    # the diagnosis and the video facts came from the Ray decode tasks, like the sequential engine's
    assert all(r["diagnosis"] and r["video"] for r in rows if r["status"] == "ok")
    assert ray.is_initialized()  # an engine that joined a running Ray leaves it running


def test_ray_worker_killed_mid_run_every_video_scored_once(ray_runtime, clips, sequential_rows, tmp_path):
    log = tmp_path / "starts.log"
    rows, killed = [], None
    # each call sleeps 1 s: a worker found inside one is still inside it when the kill lands
    for row in score_collection(SlowLite(str(log), seconds=1.0), [str(clips)], engine="ray"):
        rows.append(row)
        if killed is None:
            # as in the local engine's test: the next task may not have started when the row arrives
            killed = wait_for_busy_worker(str(log))
            assert killed, "a Ray worker is busy on a video mid-run"
            os.kill(killed, signal.SIGKILL)
    names = [r["path"] for r in rows]
    assert len(names) == len(set(names)) == N_GOOD + 2  # every video exactly once
    assert [{**r, "model": "lite"} for r in clean_rows(rows)] == sequential_rows
    started = starts(str(log))
    assert killed in {pid for pid, _ in started} and len(started) > N_GOOD + 2  # its video ran again


def test_ray_network_models_load_on_the_workers_and_give_the_sequential_rows(ray_runtime, tmp_path):
    """LIQE, FAST-VQA and Q-Align (tiny random networks): decoding in Ray tasks, the networks set up in the
    model actors (each actor receives the predictor without anything `setup` loads), rows equal to the
    sequential engine's (numbers to 1e-5: an actor runs torch with Ray's one thread per CPU, which sums in
    another order than this process's threads), batches of 4 within 1e-5 of one video at a time."""
    from network_helpers import tiny_fastvqa, tiny_liqe, tiny_qalign

    from rqvqa.video.synth import make_video

    videos = [
        str(make_video(tmp_path / f"n{i}.mp4", width=96 + 32 * i, height=64, fps=10, n_frames=14, seed=i))
        for i in range(4)
    ]
    predictors = [
        create_predictor("liqe", model=tiny_liqe()),
        create_predictor("fastvqa", model=tiny_fastvqa(), seed=3),
        create_predictor("qalign", engine=tiny_qalign(tmp_path / "spm")),
    ]
    for predictor in predictors:
        assert predictor.resources().networks
        sequential = clean_rows(list(score_collection(predictor, videos, engine="sequential")))
        on_ray = clean_rows(list(score_collection(predictor, videos, engine="ray")))
        batched = clean_rows(list(score_collection(predictor, videos, engine="ray", batch_size=4)))
        for one, ray_row, four in zip(sequential, on_ray, batched, strict=True):
            assert _without_numbers(ray_row) == _without_numbers(one), predictor.card.name
            assert ray_row["status"] == "ok" and ray_row["score"] == pytest.approx(one["score"], abs=1e-5)
            assert ray_row["per_second"] == pytest.approx(one["per_second"], abs=1e-5)
            assert four["score"] == pytest.approx(one["score"], abs=1e-5)


def _without_numbers(row: dict) -> dict:
    """A row without the network's numbers (score, per-second values, model details)."""
    return {k: v for k, v in row.items() if k not in ("score", "per_second", "extra")}

"""The Ray engine on a private local Ray runtime (2 CPUs, 127.0.0.1), started here and shut down after.

Skipped without Ray (`pip install 'rqvqa[ray]'`); slow (starting Ray takes 10-30 s on 2 loaded cores).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import REPO
from pipeline_helpers import N_GOOD, SlowLite, busy_workers, clean_rows, make_clips, starts

from rqvqa.pipeline import score_collection
from rqvqa.zoo import create_predictor

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
    assert ray.is_initialized()  # an engine that joined a running Ray leaves it running


def test_ray_worker_killed_mid_run_every_video_scored_once(ray_runtime, clips, sequential_rows, tmp_path):
    log = tmp_path / "starts.log"
    rows, killed = [], None
    # each call sleeps 1 s: a worker found inside one is still inside it when the kill lands
    for row in score_collection(SlowLite(str(log), seconds=1.0), [str(clips)], engine="ray"):
        rows.append(row)
        if killed is None:
            busy = busy_workers(str(log))
            assert busy, "a Ray worker is busy on a video mid-run"
            killed = busy[-1]
            os.kill(killed, signal.SIGKILL)
    names = [r["path"] for r in rows]
    assert len(names) == len(set(names)) == N_GOOD + 2  # every video exactly once
    assert [{**r, "model": "lite"} for r in clean_rows(rows)] == sequential_rows
    started = starts(str(log))
    assert killed in {pid for pid, _ in started} and len(started) > N_GOOD + 2  # its video ran again

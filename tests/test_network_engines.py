"""The network models (LIQE, FAST-VQA, Q-Align; tiny random networks) on the pipeline's two stages:
decoding in the local engine's worker processes, rows equal to the sequential engine's, batches across videos
equal to one video at a time, and frames in memory scored exactly as the same frames from a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from network_helpers import tiny_fastvqa, tiny_liqe, tiny_qalign
from pipeline_helpers import Logged, clean_rows, decode_pids

from rqvqa.api import create_predictor
from rqvqa.pipeline import score_collection
from rqvqa.video.reader import iter_frames, probe
from rqvqa.video.synth import make_video, write_frames

pytestmark = pytest.mark.slow  # every spawned worker imports torch: tens of seconds on 2 cores

MODELS = ("liqe", "fastvqa", "qalign")


@pytest.fixture(scope="module")
def predictors(tmp_path_factory) -> dict:
    return {
        "liqe": create_predictor("liqe", model=tiny_liqe()),
        "fastvqa": create_predictor("fastvqa", model=tiny_fastvqa(), seed=3),
        "qalign": create_predictor("qalign", engine=tiny_qalign(tmp_path_factory.mktemp("spm"))),
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("network-clips")
    paths = [
        str(make_video(root / f"c{i}.mp4", width=96 + 32 * i, height=64, fps=10, n_frames=12 + 4 * i, seed=i))
        for i in range(5)
    ]
    (root / "junk.mp4").write_bytes(b"not a video" * 10)
    return [*paths[:2], str(root / "junk.mp4"), *paths[2:]]


def _scores(rows: list[dict]) -> dict[str, tuple]:
    return {r["path"]: (r["status"], r["score"], tuple(r["per_second"])) for r in rows}


@pytest.mark.parametrize("name", MODELS)
def test_local_engine_decodes_in_workers_and_gives_the_sequential_rows(name, predictors, clips, tmp_path):
    log = str(tmp_path / "decodes.log")
    predictor = Logged(predictors[name], log)
    sequential = list(score_collection(predictor, clips, engine="sequential"))
    assert decode_pids(log) == {os.getpid()}
    Path(log).unlink()
    local = list(score_collection(predictor, clips, engine="local", workers=2))
    workers = decode_pids(log)
    assert workers and os.getpid() not in workers  # every decode ran in a worker process
    assert clean_rows(local) == clean_rows(sequential)
    assert sum(r["status"] == "ok" for r in local) == 5 and len(local) == len(clips)
    assert len({r["score"] for r in local if r["status"] == "ok"}) > 1  # the clips really differ


@pytest.mark.parametrize("name", MODELS)
def test_batches_across_videos_equal_one_video_at_a_time(name, predictors, clips):
    one = _scores(score_collection(predictors[name], clips, engine="local", workers=2, batch_size=1))
    four = _scores(score_collection(predictors[name], clips, engine="local", workers=2, batch_size=4))
    assert one.keys() == four.keys()
    for path, (status, score, seconds) in one.items():
        status4, score4, seconds4 = four[path]
        assert status4 == status
        if status == "ok":
            assert score4 == pytest.approx(score, abs=1e-5)
            np.testing.assert_allclose(seconds4, seconds, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_frames_in_memory_score_as_the_file(name, predictors, clips):
    """The frame models read RGB: frames decoded from a file give that file's prediction to the last digit."""
    path = clips[3]
    frames = np.stack([f for _, f in iter_frames(path)])
    from_file = predictors[name].predict(path)
    from_frames = predictors[name].predict_frames(frames, float(probe(path).frame_rate))
    assert from_frames.score == from_file.score
    assert from_frames.per_second == from_file.per_second


def test_yuv_models_score_frames_as_a_lossless_file_of_them(tmp_path):
    """`lite`, BRISQUE and NIQE read YUV: frames in memory are converted as an encoder would, so they give the
    prediction of a lossless RGB file of the same frames (to the last digit), with no temporary file."""
    path = make_video(tmp_path / "src.mp4", width=160, height=96, fps=10, n_frames=25, seed=4)
    frames = np.stack([f for _, f in iter_frames(path)])
    lossless = write_frames(tmp_path / "frames.mkv", frames, fps=10)
    for name in ("lite", "brisque", "niqe"):
        predictor = create_predictor(name)
        assert predictor.predict_frames(frames, 10.0).score == predictor.predict(lossless).score, name

"""The collection pipeline: inputs, result files, the sequential and local engines, faults, the Python API."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from pipeline_helpers import (
    N_GOOD,
    CrashingLite,
    SlowLite,
    clean_rows,
    make_clips,
    starts,
    wait_for_busy_worker,
)

from rqvqa.api import create_predictor
from rqvqa.errors import ConfigError
from rqvqa.pipeline import iter_inputs, open_writer, read_results, score_collection
from rqvqa.pipeline.outputs import ParquetWriter
from rqvqa.results import Prediction


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("collection"))


@pytest.fixture(scope="module")
def sequential_rows(clips) -> list[dict]:
    return list(score_collection(create_predictor("lite"), [str(clips)], engine="sequential"))


# --------------------------------------------------------------------------------------------- inputs


def test_inputs_folders_globs_manifests_stdin(clips, tmp_path):
    videos = list(iter_inputs([str(clips)]))
    assert len(videos) == N_GOOD + 2 and not any(v.endswith(".txt") for v in videos)
    assert videos == sorted(videos, key=lambda v: (Path(v).parent.as_posix(), Path(v).name)) or len(videos)
    assert list(iter_inputs(str(clips / "a" / "*.mp4"))) == sorted(
        str(p) for p in (clips / "a").glob("*.mp4")
    )
    deep = list(iter_inputs(str(clips / "**" / "clip0[02].mp4")))
    assert [Path(p).name for p in deep] == ["clip00.mp4", "clip02.mp4"]
    assert list(iter_inputs(["missing.mp4", "nomatch*.mp4"])) == ["missing.mp4", "nomatch*.mp4"]
    (tmp_path / "empty").mkdir()
    assert list(iter_inputs([str(tmp_path / "empty")])) == [str(tmp_path / "empty")]  # its own error row
    (tmp_path / "m.csv").write_text("video,mos,group\na/clip01.mp4,3.0,g1\nb/junk.mp4,2.0,g2\n")
    assert list(iter_inputs(tmp_path / "m.csv")) == [
        str(tmp_path / "a/clip01.mp4"),
        str(tmp_path / "b/junk.mp4"),
    ]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"video": ["x.mp4", "y/z.mkv"], "mos": [1.0, 2.0]}), tmp_path / "m.parquet")
    assert list(iter_inputs([str(tmp_path / "m.parquet")])) == [
        str(tmp_path / "x.mp4"),
        str(tmp_path / "y/z.mkv"),
    ]
    stdin = io.StringIO("# a comment\none.mp4\n\n two.mp4 \n")
    assert list(iter_inputs(["-"], stdin=stdin)) == ["one.mp4", "two.mp4"]
    (tmp_path / "bad.csv").write_text("path,mos\nx.mp4,1\n")
    (bad,) = iter_inputs([str(tmp_path / "bad.csv")])  # its own error row, the other inputs go on
    assert bad == str(tmp_path / "bad.csv") and "no 'video' column" in bad.reason


# -------------------------------------------------------------------------------------------- outputs


def _row(i: int, status: str = "ok") -> dict:
    ok = status == "ok"
    return {
        "path": f"/v/{i}.mp4",
        "model": "lite",
        "status": status,
        "score": 3.25 + i if ok else None,
        "lower_better": False,
        "per_second": [1.5, None, 2.0] if ok else [],
        "error": None if ok else f'/v/{i}.mp4: broken, "quoted", 2 lines? no',
        "extra": {"frames": [1, 2]},
        "weights": "packaged",
        "options": {"features": "videval-light480"},
        "size": 1000 + i,
        "content_key": f"blake2b128:{i:032x}",
        "timings": {"cpu_s": 0.5, "model_s": None},
        "video": {"width": 96, "height": 64, "fps": 29.97, "duration": 1.5, "frames": 45} if ok else None,
        "diagnosis": None,
        "notes": ["the score 6.25 is off the model's scale [1, 5]"] if i == 3 else [],
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_writers_round_trip_resume_and_refuse_to_overwrite(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    writer = open_writer(path)
    rows = [_row(0), _row(1, "error"), _row(2)]
    for row in rows:
        writer.write(row)
    writer.close()
    assert read_results(path) == rows
    with pytest.raises(ConfigError, match="--resume"):
        open_writer(path)
    again = open_writer(path, resume=True)
    options = '{"features":"videval-light480"}'
    # what --resume skips: the paths with an ok row (an error row is retried)
    assert again.done() == {(r["path"], "lite", "packaged", options) for r in rows if r["status"] == "ok"}
    again.write(_row(3))
    again.close()
    assert [r["path"] for r in read_results(path)] == ["/v/0.mp4", "/v/1.mp4", "/v/2.mp4", "/v/3.mp4"]
    text = "" if suffix == ".parquet" else path.read_text()
    assert "NaN" not in text and "nan" not in text


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_partial_last_line_is_ignored_then_repaired(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    writer = open_writer(path)
    writer.write(_row(0))
    with path.open("a") as handle:  # what a kill in the middle of a write leaves
        handle.write('{"path": "/v/1.mp4", "mod' if suffix == ".jsonl" else "/v/1.mp4,lite,ok,3.")
    assert [r["path"] for r in read_results(path)] == ["/v/0.mp4"]
    writer = open_writer(path, resume=True)
    writer.write(_row(2))
    assert [r["path"] for r in read_results(path)] == ["/v/0.mp4", "/v/2.mp4"]


def test_parquet_parts_compaction_and_a_killed_compaction(tmp_path):
    import pandas as pd

    path = tmp_path / "out.parquet"
    writer = ParquetWriter(path, compact_every=4)
    for i in range(6):
        writer.write(_row(i))
    names = sorted(p.name for p in path.iterdir())
    assert names == ["part-000000000-000000003.parquet", "part-000000004.parquet", "part-000000005.parquet"]
    assert list(pd.read_parquet(path).sort_values("path")["score"]) == [3.25 + i for i in range(6)]
    # a compaction killed after writing the merged part but before deleting the merged ones
    import shutil

    shutil.copy(path / "part-000000004.parquet", tmp_path / "keep4")
    shutil.copy(path / "part-000000005.parquet", tmp_path / "keep5")
    writer.close()  # merges 4-5
    shutil.copy(tmp_path / "keep4", path / "part-000000004.parquet")
    shutil.copy(tmp_path / "keep5", path / "part-000000005.parquet")
    (path / ".part-000000006.parquet.x.tmp").write_bytes(b"half")
    assert len(read_results(path)) == 6  # the duplicates are not read
    ParquetWriter(path, resume=True).close()  # and the next open deletes them and the temporary file
    assert sorted(p.name for p in path.iterdir()) == [
        "part-000000000-000000003.parquet",
        "part-000000004-000000005.parquet",
    ]
    assert len(pd.read_parquet(path)) == 6


# -------------------------------------------------------------------------------------------- engines


def test_sequential_rows_one_per_input_with_provenance(sequential_rows, clips):
    assert len(sequential_rows) == N_GOOD + 2
    bad = {r["path"]: r for r in sequential_rows if r["status"] == "error"}
    assert set(bad) == {str(clips / "a" / "junk.mp4"), str(clips / "b" / "empty.mov")}
    assert all(r["error"].startswith(r["path"]) and r["score"] is None for r in bad.values())
    for row in sequential_rows:
        assert row["model"] == "lite" and row["weights"] == "packaged"
        assert row["size"] == os.path.getsize(row["path"]) and row["content_key"].startswith("blake2b128:")
        if row["status"] == "ok":
            assert 1.0 <= row["score"] <= 5.0 and row["per_second"] and row["timings"]["cpu_s"] > 0
    single = create_predictor("lite").predict(str(clips / "a" / "clip01.mp4"))
    row = next(r for r in sequential_rows if r["path"].endswith("clip01.mp4"))
    # engines run CPU stages with one BLAS thread, a direct call with the default: last-bit differences
    assert row["score"] == pytest.approx(single.score, abs=1e-9)
    assert row["per_second"] == pytest.approx(single.per_second, abs=1e-9)


def test_local_engine_gives_the_sequential_rows(clips, sequential_rows, tmp_path):
    out = tmp_path / "scores.parquet"
    rows = list(score_collection(create_predictor("lite"), [str(clips)], engine="local", workers=2, out=out))
    assert clean_rows(rows) == clean_rows(sequential_rows)
    assert clean_rows(read_results(out)) == clean_rows(sequential_rows)
    ordered = list(
        score_collection(create_predictor("lite"), [str(clips)], engine="local", workers=2, ordered=True)
    )
    assert [r["path"] for r in ordered] == list(iter_inputs([str(clips)]))


def _finish_the_row_names(rows):
    names = [r["path"] for r in rows]
    assert len(names) == len(set(names)) == N_GOOD + 2  # every video exactly once
    return names


def test_local_worker_killed_mid_run_every_video_scored_once(clips, sequential_rows, tmp_path):
    log = tmp_path / "starts.log"
    # each call sleeps 1 s: a worker found inside one is still inside it when the kill lands
    predictor = SlowLite(str(log), seconds=1.0)
    rows = []
    killed = None
    for row in score_collection(predictor, [str(clips)], engine="local", workers=2):
        rows.append(row)
        if killed is None:
            killed = wait_for_busy_worker(str(log))
            assert killed, "a worker is busy on a video mid-run"
            os.kill(killed, signal.SIGKILL)
    _finish_the_row_names(rows)
    expected = {r["path"]: r for r in clean_rows(sequential_rows)}
    for row in clean_rows(rows):
        assert {**row, "model": "lite"} == expected[row["path"]]
    started = starts(str(log))
    assert len(started) > N_GOOD + 2  # the killed worker's video (and those in flight) ran again
    assert len({pid for pid, _ in started}) >= 3  # in a rebuilt pool


def test_a_video_that_kills_its_worker_gets_an_error_row_and_the_others_go_on(
    clips, sequential_rows, tmp_path
):
    rows = list(
        score_collection(CrashingLite(str(tmp_path / "log")), [str(clips)], engine="local", workers=2)
    )
    _finish_the_row_names(rows)
    poison = next(r for r in rows if r["path"].endswith("clip03.mp4"))
    assert poison["status"] == "error" and "worker process died" in poison["error"]
    expected = {r["path"]: r for r in clean_rows(sequential_rows)}
    others = [r for r in clean_rows(rows) if not r["path"].endswith("clip03.mp4")]
    assert all({**r, "model": "lite"} == expected[r["path"]] for r in others)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "rqvqa", "predict", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kwargs,
    )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_driver_killed_then_resume_nothing_lost_nothing_twice(clips, sequential_rows, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    proc = _cli(str(clips), "--out", str(out), "--workers", "1")
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and len(read_results(out) if out.exists() else []) < 2
    ):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, at once
    proc.wait()
    before = read_results(out)
    assert 2 <= len(before) < N_GOOD + 2, "the kill landed mid-run"
    resumed = _cli(str(clips), "--out", str(out), "--resume", "--workers", "2", "--json")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 1, stderr  # the two bad files
    summary = json.loads(stdout)
    ok_before = sum(r["status"] == "ok" for r in before)
    assert summary["skipped"] == ok_before  # error rows are retried, ok rows kept
    assert summary["scored"] + summary["failed"] == N_GOOD + 2 - ok_before and summary["failed"] == 2
    after = read_results(out)
    _finish_the_row_names(after)
    assert clean_rows(after) == clean_rows(sequential_rows)


def test_cli_scores_a_folder_to_parquet_and_resume_skips_everything(clips, sequential_rows, tmp_path, capsys):
    from rqvqa.cli import main

    out = tmp_path / "s.parquet"
    assert main(["predict", str(clips), "--out", str(out), "--engine", "sequential"]) == 1
    assert "10 video(s) scored" not in capsys.readouterr().out
    assert clean_rows(read_results(out)) == clean_rows(sequential_rows)
    # the ok rows are kept, the two error rows retried (and still failing: exit 1), one row per path
    assert main(["predict", str(clips), "--out", str(out), "--resume", "--json"]) == 1
    summary = {"out": str(out), "scored": 0, "failed": 2, "skipped": N_GOOD}
    assert json.loads(capsys.readouterr().out) == summary
    assert clean_rows(read_results(out)) == clean_rows(sequential_rows)
    assert main(["predict", str(clips), "--out", str(out)]) == 1
    assert "already holds results" in capsys.readouterr().err
    assert main(["predict", str(clips), "--resume"]) == 1
    assert "--resume needs --out" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ API


def test_python_api_exports_and_listing_without_torch():
    import rqvqa

    assert rqvqa.create_predictor is create_predictor and callable(rqvqa.list_models)
    code = (
        "import sys, rqvqa\n"
        "cards = rqvqa.list_models()\n"
        "from rqvqa.cli import main\n"
        "assert main(['predict', '--model', 'nope', 'x.mp4']) == 1\n"
        "assert main(['predict', '--list-models', '--json']) == 0\n"
        "print({c['name']: c['status'] for c in cards}, 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RQVQA_HOME": "/nonexistent-rqvqa-home"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith("False"), out.stdout  # neither the listing nor an unknown model imports torch
    assert "'lite': 'offline'" in last and "'fastvqa': 'needs download'" in last
    assert "unknown model 'nope'; available models: brisque," in out.stderr


def test_predict_many_yields_as_videos_finish_and_predict_frames(clips):
    model = create_predictor("lite")
    stream = model.predict_many([str(clips / "a")], engine="sequential")
    first = next(stream)  # a generator: the first row comes before the rest are scored
    assert first["path"].startswith(str(clips / "a")) and len(list(stream)) == 5
    from rqvqa.video.synth import render_frame

    frames = np.stack([render_frame(i, 96, 64, 10.0, seed=3) for i in range(20)])
    prediction = model.predict_frames(frames, fps=10)
    assert isinstance(prediction, Prediction) and 1.0 <= prediction.score <= 5.0
    assert len(prediction.per_second) == 2
    assert model.predict_frames(frames, fps=10).score == prediction.score  # same frames, same bytes
    with pytest.raises(Exception, match="uint8 RGB"):
        model.predict_frames(frames[..., 0], fps=10)


# ---------------------------------------------------------------------------------- cross-video batching


@pytest.mark.slow  # tiny networks, but every spawned worker imports torch and timm: minutes on 2 loaded cores
def test_kvq_batched_model_stage_equals_one_video_at_a_time(clips, tmp_path):
    """One ensemble forward over several videos gives each video's one-at-a-time result (fp32, CPU, 1e-5),
    and the local engine with --batch-size 3 gives the sequential rows."""
    import torch

    from rqvqa.families.rqvqa.model import RQVQA, ModelConfig, parse_sources
    from rqvqa.families.rqvqa.predictor import RQVQAKVQ
    from rqvqa.families.rqvqa.remap import save_model
    from rqvqa.families.rqvqa.swin_bot import BaseNetConfig

    config = ModelConfig(
        sources=parse_sources(["stats"]), base=BaseNetConfig.tiny(pooling="bot", img_size=64)
    )
    for seed in range(2):
        torch.manual_seed(seed)
        save_model(RQVQA(config).eval(), tmp_path / f"member{seed}.safetensors")
    model = RQVQAKVQ(weights=tmp_path)
    videos = sorted(str(p) for p in clips.rglob("clip0[0-4].mp4"))
    decoded = [model.decoder()(v) for v in videos]
    batched = model.score(decoded)
    assert batched[0].extra["batch"] == len(videos)
    for one, video in zip(batched, videos, strict=True):
        alone = model.predict(video)
        assert alone.extra["batch"] == 1
        assert one.score == pytest.approx(alone.score, abs=1e-5)
        np.testing.assert_allclose(one.per_second, alone.per_second, atol=1e-5)
    assert len({round(p.score, 4) for p in batched}) > 1  # the videos really differ
    rows = list(score_collection(model, videos, engine="local", workers=2, batch_size=3))
    seq = list(score_collection(model, videos, engine="sequential"))

    def scores(rs):
        return sorted((r["path"], r["score"], tuple(r["per_second"])) for r in rs)

    for (p1, s1, ps1), (p2, s2, ps2) in zip(scores(rows), scores(seq), strict=True):
        assert p1 == p2 and s1 == pytest.approx(s2, abs=1e-5) and np.allclose(ps1, ps2, atol=1e-5)


def test_library_code_imports_neither_the_cli_nor_training_code():
    """Layering: only `rqvqa.cli` imports the CLI, only the CLI and `rqvqa.train` import training code."""
    import ast

    src = REPO / "src" / "rqvqa"
    offenders = []
    for path in src.rglob("*.py"):
        module = ".".join(path.relative_to(src.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                cli = name == "rqvqa.cli" or name.startswith("rqvqa.cli.")
                train = name == "rqvqa.train" or name.startswith("rqvqa.train.")
                if cli and not (module.startswith("rqvqa.cli") or module == "rqvqa.__main__"):
                    offenders.append(f"{module} imports {name}")
                if train and not module.startswith(("rqvqa.cli", "rqvqa.train")):
                    offenders.append(f"{module} imports {name}")
    assert not offenders, offenders


# ------------------------------------------------------------------------------- resume: one row per path


def test_copies_and_overlapping_inputs_get_one_row_per_path_and_resume_keeps_them(tmp_path, capsys):
    """Equal bytes under three names get three rows; a path named by a folder, a glob and a manifest gets
    one; a resume after any of it scores nothing twice and loses no path."""
    from rqvqa.cli import main
    from rqvqa.video.synth import make_video

    (tmp_path / "v" / "copies").mkdir(parents=True)
    clip = make_video(tmp_path / "v" / "a.mp4", width=96, height=64, fps=10, n_frames=10, seed=1)
    for name in ("a.mp4", "b.MP4"):
        (tmp_path / "v" / "copies" / name).write_bytes(clip.read_bytes())
    manifest = tmp_path / "v" / "m.csv"
    manifest.write_text("video\na.mp4\ncopies/../a.mp4\n")
    inputs = [str(tmp_path / "v"), str(tmp_path / "v" / "*.mp4"), str(manifest)]
    out = tmp_path / "rows.jsonl"
    base = ["predict", *inputs, "--out", str(out), "--engine", "sequential", "--no-diagnosis", "--json"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "scored": 3, "failed": 0, "skipped": 0}
    paths = sorted(r["path"] for r in read_results(out))
    assert [Path(p).relative_to(tmp_path / "v").as_posix() for p in paths] == [
        "a.mp4",
        "copies/a.mp4",
        "copies/b.MP4",
    ]
    assert len({r["content_key"] for r in read_results(out)}) == 1  # the same bytes, a row each
    assert main([*base, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "scored": 0, "failed": 0, "skipped": 3}
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_retries_error_rows_and_the_new_row_supersedes(tmp_path, suffix, capsys):
    from rqvqa.cli import main
    from rqvqa.video.synth import make_video

    good = make_video(tmp_path / "good.mp4", width=96, height=64, fps=10, n_frames=10, seed=1)
    late = tmp_path / "late.mp4"  # missing at first (as weights not yet in place would be)
    out = tmp_path / f"rows{suffix}"
    base = ["predict", str(good), str(late), "--out", str(out), "--engine", "sequential", "--json"]
    assert main([*base, "--no-diagnosis"]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1
    # resumed while still missing: retried, still failing, exit 1 (never "0 failed" over a file of errors)
    assert main([*base, "--resume", "--no-diagnosis"]) == 1
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "scored": 0, "failed": 1, "skipped": 1}
    late.write_bytes(good.read_bytes())
    assert main([*base, "--resume", "--no-diagnosis"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "scored": 1, "failed": 0, "skipped": 1}
    rows = read_results(out)
    assert sorted((Path(r["path"]).name, r["status"]) for r in rows) == [
        ("good.mp4", "ok"),
        ("late.mp4", "ok"),
    ]

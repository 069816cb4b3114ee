"""The rows' video facts, artifact diagnosis and notes (`rqvqa.results`): computed in the decode the model
already runs (a passive product, never a second decode), the same in every engine, skipped with
`--no-diagnosis`, written and read back by every result format."""

from __future__ import annotations

import json
import math

import pytest
from pipeline_helpers import clean_rows

from rqvqa.api import create_predictor
from rqvqa.cli import main
from rqvqa.diagnosis import KINDS, diagnose_file
from rqvqa.pipeline import read_results, score_collection
from rqvqa.registry import Card
from rqvqa.results import Prediction, notes


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three small generated clips (96x64, 10 fps, 1.5-2.5 s)."""
    from rqvqa.video.synth import make_video

    root = tmp_path_factory.mktemp("rows")
    for i in range(3):
        make_video(root / f"c{i}.mp4", width=96, height=64, fps=10, n_frames=15 + 5 * i, seed=i)
    return root


def _check_row(row, path):
    assert row["status"] == "ok", row
    video = row["video"]
    assert set(video) == {"width", "height", "fps", "duration", "frames"}
    assert (video["width"], video["height"], video["fps"]) == (96, 64, 10.0)
    assert video["frames"] == round(video["duration"] * 10)
    assert set(row["diagnosis"]) == set(KINDS)
    # the same as the diagnosis alone (`rqvqa diagnose`): lite decodes every frame of a clip this short
    assert row["diagnosis"] == json.loads(json.dumps(diagnose_file(path)))
    assert isinstance(row["notes"], list)


@pytest.mark.parametrize("engine", ["sequential", "local"])
def test_rows_carry_the_video_and_its_diagnosis_in_every_engine(clips, engine):
    rows = list(score_collection(create_predictor("lite"), [clips], engine=engine, workers=2))
    assert len(rows) == 3
    for row in rows:
        _check_row(row, row["path"])


def test_the_local_engine_gives_the_sequential_rows(clips):
    lite = create_predictor("lite")
    sequential = clean_rows(list(score_collection(lite, [clips], engine="sequential")))
    local = clean_rows(list(score_collection(lite, [clips], engine="local", workers=2)))
    assert sequential == local


def test_no_diagnosis_skips_it_and_keeps_the_video_facts(clips, capsys):
    assert main(["predict", str(clips / "c0.mp4"), "--json", "--no-diagnosis"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["diagnosis"] is None and row["video"]["frames"] == 15
    (row,) = score_collection(create_predictor("lite"), [clips / "c0.mp4"], diagnosis=False)
    assert row["diagnosis"] is None
    prediction = create_predictor("lite").predict(clips / "c0.mp4", diagnosis=False)
    assert prediction.diagnosis is None and prediction.video["width"] == 96
    assert create_predictor("lite").predict(clips / "c0.mp4").diagnosis is not None


def test_the_table_shows_an_issues_column(clips, capsys):
    assert main(["predict", str(clips / "c0.mp4"), str(clips / "c1.mp4")]) == 0
    out = capsys.readouterr().out
    assert "issues" in out.splitlines()[1]


class _CountingDecodes:
    """Counts the decodes (`decode_frames` calls) and the frames they yield."""

    def __init__(self, monkeypatch):
        import rqvqa.video.decode as decode_module

        self.calls, self.frames = 0, 0
        original = decode_module.decode_frames

        def counted(path, *args):
            self.calls += 1
            for item in original(path, *args):
                self.frames += 1
                yield item

        monkeypatch.setattr(decode_module, "decode_frames", counted)


@pytest.mark.parametrize("model", ["lite", "brisque"])
def test_the_diagnosis_adds_no_decode_and_no_frame(clips, monkeypatch, model):
    counter = _CountingDecodes(monkeypatch)
    predictor = create_predictor(model)
    predictor.predict(clips / "c2.mp4", diagnosis=False)
    calls, frames = counter.calls, counter.frames
    prediction = predictor.predict(clips / "c2.mp4")
    assert (counter.calls - calls, counter.frames - frames) == (calls, frames) == (1, frames)
    assert prediction.diagnosis["stutter"]["per_second"]


def test_a_model_that_stops_early_gets_the_diagnosis_of_what_it_decoded(tmp_path, monkeypatch):
    """brisque with --max-frames 1 reads the first second's frames of a 4-s clip: the diagnosis covers what
    was decoded, no more, and the row says so."""
    from rqvqa.video.synth import make_video

    clip = make_video(tmp_path / "long.mp4", width=96, height=64, fps=10, n_frames=40, seed=4)
    counter = _CountingDecodes(monkeypatch)
    predictor = create_predictor("brisque", max_frames=1)
    predictor.predict(clip, diagnosis=False)
    frames = counter.frames
    (row,) = score_collection(predictor, [clip], engine="sequential")
    assert counter.frames == 2 * frames and frames < 40
    assert len(row["diagnosis"]["stutter"]["per_second"]) < 4
    assert any("the diagnosis covers the first" in n for n in row["notes"])


def _card(name="lite", score_range=(1.0, 5.0), lower_better=False):
    return Card(name, "test", "test", lower_better, score_range, "test")


def _diagnosis(*detected):
    return {k: {"level": 1.0, "detected": k in detected, "per_second": [1.0]} for k in KINDS}


def test_notes_say_ood_off_scale_and_underrated_artifacts():
    video = {"width": 96, "height": 64, "fps": 10.0, "duration": 1.0, "frames": 10}
    banded = Prediction(4.2, [4.2], {}, video, _diagnosis("banding", "blur"))
    assert notes(_card(), 4.2, banded) == [
        "lite is known to under-rate banding, detected here (docs/diagnosis.md)"
    ]  # blur: lite penalises it, no note
    assert notes(_card(), 2.5, banded) == []  # the low half of the scale: the score already says it
    assert notes(_card("brisque", (0.0, 100.0), True), 10.0, banded) == []  # not measured: no claim
    ood = Prediction(6.0, [], {"ood": True, "ood_feature": "mean_x"}, video, None)
    assert notes(_card(), 6.0, ood) == [
        "out of distribution: feature mean_x is outside the training range; the score is a guess",
        "the score 6 is off the model's scale [1, 5]",
    ]
    below = notes(_card("plcc", (0.0, None)), -0.21, Prediction(-0.21))
    assert below == ["the score -0.21 is off the model's scale [0, inf]"]


@pytest.mark.slow
def test_the_underrated_note_on_a_banded_clip_scored_by_lite(tmp_path):
    """A generated scene (960x540, 1 s) with its luma quantised to steps of 8: banding is detected (7.4) and
    lite scores it in the top half of its scale (3.04): the row says lite is known to under-rate banding."""
    from rqvqa.diagnosis.scenes import make_scene_clip
    from rqvqa.video.degrade import grade_video

    source = make_scene_clip(tmp_path / "scene.mkv", 1, n_frames=30)
    banded = grade_video(source, tmp_path / "banded.mp4", "banding", 8)
    (row,) = score_collection(create_predictor("lite"), [banded], engine="sequential")
    assert row["diagnosis"]["banding"]["detected"] and row["score"] > 3.0, row["score"]
    assert "lite is known to under-rate banding, detected here (docs/diagnosis.md)" in row["notes"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_format_round_trips_the_video_diagnosis_and_notes(clips, tmp_path, suffix):
    out = tmp_path / f"rows{suffix}"
    inputs = [clips / "c0.mp4", clips / "c1.mp4", tmp_path / "missing.mp4"]
    rows = list(score_collection(create_predictor("lite"), inputs, engine="sequential", out=out))
    back = {r["path"]: r for r in read_results(out)}
    assert len(back) == 3
    for row in rows:
        got = back[row["path"]]
        assert got["video"] == row["video"] and got["notes"] == row["notes"]
        if row["diagnosis"] is None:
            assert got["diagnosis"] is None
            continue
        for kind in KINDS:
            want, have = row["diagnosis"][kind], got["diagnosis"][kind]
            assert have["detected"] == want["detected"]
            assert have["level"] == want["level"] or math.isclose(have["level"], want["level"])
            if suffix != ".csv":  # the per-second curves are JSONL/Parquet only
                assert have == want
    assert back[str(tmp_path / "missing.mp4")]["video"] is None


def test_csv_shows_the_levels_issues_and_notes_to_a_spreadsheet(clips, tmp_path):
    import csv

    out = tmp_path / "rows.csv"
    list(score_collection(create_predictor("lite"), [clips / "c0.mp4"], engine="sequential", out=out))
    with out.open(newline="") as handle:
        (cells,) = list(csv.DictReader(handle))
    for column in ("width", "height", "fps", "duration", "issues", "notes", *KINDS):
        assert column in cells
    assert cells["width"] == "96" and float(cells["banding"]) >= 0
    assert "ood" in cells["issues"] and "out of distribution" in cells["notes"]


# ------------------------------------------------------------------------- what a reader is told (issue 19)


def test_a_folder_run_shows_a_progress_total_and_a_summary_that_adds_up(clips, tmp_path, capsys):
    (clips / "junk.mp4").write_bytes(b"not a video" * 10)
    try:
        out = tmp_path / "rows.jsonl"
        argv = ["predict", str(clips), "--out", str(out), "--engine", "sequential", "--no-diagnosis"]
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert "/4 [" in captured.err  # the bar knows the total (4 videos), so it shows an ETA
        assert captured.out.strip() == f"4 video(s) in {out}: 3 scored, 1 failed"
        assert main([*argv, "--resume"]) == 1
        summary = capsys.readouterr().out.strip()
        assert summary == f"4 video(s) in {out}: 0 scored, 1 failed, 3 already scored (--resume)"
    finally:
        (clips / "junk.mp4").unlink()


def test_tables_wrap_at_80_columns_instead_of_cutting(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["predict", "--list-models"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert "videval-light" in out

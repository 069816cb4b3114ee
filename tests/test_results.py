"""The result row (`rqvqa.results`) and `rqvqa predict`'s per-video isolation: every input gets a row, any
exception becomes that video's one-line error, no NaN leaves, JSON is strict, `--debug` shows tracebacks."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from rqvqa.cli import main
from rqvqa.errors import VideoError
from rqvqa.pipeline import score_video
from rqvqa.predictor import Predictor
from rqvqa.registry import Card
from rqvqa.results import CSV_COLUMNS, Prediction, csv_row, dumps_json, one_line


def _path_only(path):
    """A decode stage that decodes nothing: the scripted model stage looks the path up."""
    return str(path)


class Scripted(Predictor):
    """A predictor whose outcome per path is scripted: an exception to raise or a Prediction to return."""

    name = "scripted"

    def __init__(self, outcomes):
        self.outcomes = outcomes
        self.card = Card("scripted", "test", "scripted outcomes", True, (0.0, None), "test")

    def products(self):
        return {}

    def decoder(self):
        return _path_only

    def score(self, batch):
        out = []
        for path in batch:
            outcome = self.outcomes[path]
            if isinstance(outcome, BaseException):
                raise outcome
            out.append(outcome)
        return out


def test_any_exception_becomes_an_error_row_naming_the_file():
    predictor = Scripted(
        {
            "a.mp4": RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"),
            "b.mp4": VideoError("no video stream", "b.mp4"),
            "c.mp4": ZeroDivisionError("float division by zero"),
            "d.mp4": MemoryError(),
        }
    )
    rows = {p: score_video(predictor, p) for p in predictor.outcomes}
    assert rows["a.mp4"]["error"] == "a.mp4: RuntimeError: CUDA out of memory."
    assert rows["b.mp4"]["error"] == "b.mp4: no video stream"
    assert rows["c.mp4"]["error"] == "c.mp4: ZeroDivisionError: float division by zero"
    assert rows["d.mp4"]["error"] == "d.mp4: out of memory"
    for path, row in rows.items():
        assert list(row) == [
            "path",
            "model",
            "status",
            "score",
            "lower_better",
            "per_second",
            "error",
            "extra",
            "weights",
            "options",
            "video",
            "diagnosis",
            "notes",
            "size",
            "content_key",
            "timings",
        ]
        assert (row["path"], row["status"], row["score"], row["per_second"]) == (path, "error", None, [])
        assert (row["video"], row["diagnosis"], row["notes"]) == (None, None, [])
        assert row["model"] == "scripted" and row["lower_better"] is True and row["extra"] == {}


def test_interrupts_are_not_swallowed():
    with pytest.raises(KeyboardInterrupt):
        score_video(Scripted({"a.mp4": KeyboardInterrupt()}), "a.mp4")


def test_debug_row_carries_the_traceback():
    row = score_video(Scripted({"a.mp4": ValueError("boom")}), "a.mp4", debug=True)
    assert row["extra"]["traceback"].startswith("Traceback (most recent call last)")
    assert "ValueError: boom" in row["extra"]["traceback"]


def test_no_nan_leaves_a_row():
    nan_score = Prediction(score=float("nan"), per_second=[1.0, 2.0])
    nan_second = Prediction(
        score=np.float32(2.5),
        per_second=[np.float64(1.5), float("nan"), None, float("inf")],
        extra={"frames": np.arange(3), "scores": np.array([1.0, np.nan]), "n": np.int64(4)},
    )
    predictor = Scripted({"a.mp4": nan_score, "b.mp4": nan_second})
    bad = score_video(predictor, "a.mp4")
    assert bad["status"] == "error" and bad["error"] == "a.mp4: the model produced no finite score"
    good = score_video(predictor, "b.mp4")
    assert good["status"] == "ok" and good["score"] == 2.5 and good["error"] is None
    assert good["per_second"] == [1.5, None, None, None]
    assert good["extra"] == {"frames": [0, 1, 2], "scores": [1.0, None], "n": 4}
    assert json.loads(dumps_json(good)) == good


def test_dumps_json_is_strict():
    text = dumps_json({"x": float("nan"), "y": [float("-inf"), 1.0], "z": np.float32(0.5)})
    assert json.loads(text) == {"x": None, "y": [None, 1.0], "z": 0.5}
    assert "NaN" not in text and "Infinity" not in text


def test_csv_row_writes_missing_values_as_empty_cells():
    row = score_video(Scripted({"a.mp4": Prediction(score=0.1 + 0.2, per_second=[1.25, None, 3.0])}), "a.mp4")
    cells = csv_row(row)
    assert dict(zip(CSV_COLUMNS, cells, strict=True)) == {
        "path": "a.mp4",
        "model": "scripted",
        "status": "ok",
        "score": "0.30000000000000004",  # full precision: the CSV round-trips the JSON score
        "lower_better": "true",
        "per_second": "1.25  3.0",  # the second of index 1 is missing: an empty field between separators
        "second_frames": "",  # this model records no frame per second
        "error": "",
        # no video facts, no diagnosis (this scripted model decodes nothing): empty cells, no note
        **dict.fromkeys(["width", "height", "fps", "duration", "frames", "issues"], ""),
        **dict.fromkeys(["banding", "blocking", "blur", "noise", "exposure", "stutter"], ""),
        "notes": "",
    }
    assert [None if s == "" else float(s) for s in cells[5].split(" ")] == [1.25, None, 3.0]


def test_one_line_keeps_the_first_line_and_names_the_file():
    assert one_line(RuntimeError("\n\nfirst\nsecond"), "v.mp4") == "v.mp4: RuntimeError: first"
    assert one_line(KeyError("k")) == "KeyError: 'k'"
    assert one_line(VideoError("bad", "v.mp4"), "other.mp4") == "v.mp4: bad"


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def batch(tmp_path_factory, small_video):
    from rqvqa.video.synth import make_video

    d = tmp_path_factory.mktemp("batch")
    junk = d / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    tiny = make_video(d / "16x16.mp4", width=16, height=16, n_frames=30, crf=None)
    return {"good": small_video, "junk": junk, "tiny": tiny, "missing": d / "missing.mp4"}


def test_predict_json_has_a_row_for_every_input(batch, capsys):
    paths = [str(batch[k]) for k in ("junk", "good", "missing")]
    code = main(["predict", *paths, "--json", "--model", "brisque", "--max-frames", "1"])
    captured = capsys.readouterr()
    assert code == 1
    rows = json.loads(captured.out)
    assert [r["path"] for r in rows] == paths
    assert [r["status"] for r in rows] == ["error", "ok", "error"]
    assert rows[0]["error"].startswith(f"{paths[0]}: not a readable video file")
    assert rows[2]["error"] == f"{paths[2]}: file not found"
    assert math.isfinite(rows[1]["score"]) and rows[1]["error"] is None
    assert "2 of 3 file(s) failed" in captured.err and "Traceback" not in captured.err


def test_predict_csv_batch_goes_on_after_a_frame_too_small(batch, capsys):
    # NIQE cannot measure 16x16 frames: that video is an error row, the good ones on both sides are scored
    good, tiny = str(batch["good"]), str(batch["tiny"])
    copy = batch["tiny"].with_name("copy_of_good.mp4")  # one row per path: the same clip under another name
    copy.write_bytes(batch["good"].read_bytes())
    code = main(["predict", "--model", "niqe", "--max-frames", "1", "--csv", good, tiny, str(copy)])
    captured = capsys.readouterr()
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert list(rows[0]) == CSV_COLUMNS
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert rows[0]["score"] == rows[2]["score"] and float(rows[0]["score"]) > 0
    assert rows[1]["path"] == tiny and rows[1]["score"] == "" and tiny in rows[1]["error"]
    assert "\n" not in rows[1]["error"] and "Traceback" not in captured.err


def test_predict_table_shows_failed_rows(batch, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps to the terminal width
    argv = ["predict", str(batch["missing"]), str(batch["good"]), "--model", "brisque", "--max-frames", "1"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"{batch['missing']}: file not found" in out and str(batch["good"]) in out


def test_debug_is_accepted_after_the_command_and_shows_tracebacks(batch, capsys):
    assert main(["predict", str(batch["junk"]), "--json", "--debug"]) == 1
    captured = capsys.readouterr()
    assert "Traceback (most recent call last)" in captured.err
    assert json.loads(captured.out)[0]["extra"]["traceback"].startswith("Traceback")


def test_main_turns_an_unexpected_exception_into_one_line(monkeypatch, capsys):
    import rqvqa.cli.info as info

    def explode(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(info, "run", explode)
    assert main(["info", "x.mp4"]) == 1
    err = capsys.readouterr().err
    assert err == "rqvqa: error: RuntimeError: something broke (rerun with --debug for the traceback)\n"
    with pytest.raises(RuntimeError, match="something broke"):
        main(["info", "x.mp4", "--debug"])


# ------------------------------------------------------------------ unmeasurable frames (contract 1)


@pytest.fixture(scope="module")
def fade_video(tmp_path_factory):
    """4 s of 288x192 at 10 fps, lossless: seconds 0 and 2 textured, seconds 1 and 3 black."""
    from rqvqa.video.synth import render_frame, write_frames

    frames = [
        render_frame(i, 288, 192, 10.0) if (i // 10) % 2 == 0 else np.zeros((192, 288, 3), np.uint8)
        for i in range(40)
    ]
    return write_frames(tmp_path_factory.mktemp("fade") / "fade.mkv", frames, fps=10)


@pytest.fixture
def dark_is_unmeasurable(monkeypatch):
    """Frame-level code that refuses dark frames, as the NSS code does for flat ones."""
    import rqvqa.families.classic.frames as video
    from rqvqa.errors import UnmeasurableError

    def guard(fn):
        def wrapped(gray, *args, **kwargs):
            if gray.mean() < 20:
                raise UnmeasurableError("the frame is flat")
            return fn(gray, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(video, "brisque_features", guard(video.brisque_features))
    monkeypatch.setattr(video, "niqe_score", guard(video.niqe_score))


@pytest.mark.parametrize("model", ["lite-v1", "brisque", "niqe"])
def test_unmeasurable_seconds_are_null_and_the_score_their_mean(fade_video, dark_is_unmeasurable, model):
    from rqvqa.api import create_predictor

    predictor = create_predictor(model)
    row = score_video(predictor, fade_video)
    assert row["status"] == "ok", row["error"]
    # protocol frames 4, 14, 24, 34: seconds 1 and 3 are black
    assert [s is None for s in row["per_second"]] == [False, True, False, True]
    assert row["extra"]["frames"] == [4, 24] and row["extra"]["unmeasurable_frames"] == [14, 34]
    assert row["extra"]["unmeasurable_reason"] == "the frame is flat"
    if model != "lite-v1":  # brisque/niqe: the video score is the mean of the measured seconds
        assert row["score"] == pytest.approx(np.mean([row["per_second"][0], row["per_second"][2]]))
    assert json.loads(dumps_json(row)) == row


def test_no_measurable_frame_is_an_error_row_with_the_reason(tmp_path, dark_is_unmeasurable):
    from rqvqa.api import create_predictor
    from rqvqa.video.synth import write_frames

    black = write_frames(tmp_path / "black.mkv", [np.zeros((112, 128, 3), np.uint8)] * 25, fps=10)
    for model in ("lite-v1", "brisque", "niqe"):
        row = score_video(create_predictor(model), black)
        assert row["status"] == "error" and row["score"] is None
        assert row["error"] == f"{black}: no measurable content: every sampled frame: the frame is flat"


def test_evaluate_json_is_strict_when_a_correlation_is_undefined(tmp_path, capsys):
    # constant predictions: every correlation is undefined (NaN inside), the JSON says null
    (tmp_path / "pred.csv").write_text("filename,score\n" + "".join(f"v{i}.mp4,3.0\n" for i in range(20)))
    (tmp_path / "lab.csv").write_text(
        "filename,score\n" + "".join(f"v{i}.mp4,{1 + i / 5}\n" for i in range(20))
    )
    assert main(["evaluate", str(tmp_path / "pred.csv"), str(tmp_path / "lab.csv"), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))[
        "metrics"
    ]
    assert metrics["SRCC"] is None and metrics["PLCC"] is None and metrics["n"] == 20

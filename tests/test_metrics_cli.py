"""`rqvqa evaluate` and `rqvqa manifest` command-line tests."""

from __future__ import annotations

import json
import re

import pytest

from rqvqa.cli import main
from rqvqa.data import read_manifest


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def scored(tmp_path):
    """Labels with video/mos headers; predictions with filename/score headers, reordered, one extra."""
    labels = _write(
        tmp_path / "labels.csv", "video,mos\na.mp4,1.0\nb.mp4,2.0\nc.mp4,3.0\nd.mp4,4.5\ne.mp4,2.2\n"
    )
    pred = _write(
        tmp_path / "pred.csv",
        "filename,score\ne.mp4,2.9\nd.mp4,4.0\nc.mp4,2.5\nb.mp4,2.4\na.mp4,0.5\nzz.mp4,3\n",
    )
    return pred, labels


def _one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rqvqa: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_evaluate_json_reports_metrics_and_fit(capsys, scored):
    pred, labels = scored
    assert main(["evaluate", str(pred), str(labels), "--fit", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    m = report["metrics"]
    assert m["n"] == 5 and m["fit"] == "none" and report["ignored_predictions"] == 1
    assert m["SRCC"] == pytest.approx(0.9)  # one swapped pair (b, e) among 5 ranks: 1 - 6*2/(5*24)
    assert m["PLCC"] == m["PLCC_raw"]
    assert "ntire2024" not in report


def test_evaluate_table_states_the_fit(capsys, scored):
    pred, labels = scored
    assert main(["evaluate", str(pred), str(labels)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fit before PLCC/RMSE\W+logistic4", out)
    for label in ("SRCC", "KRCC", "PLCC", "RMSE", "PLCC (raw, no fit)"):
        assert label in out
    assert "1 predictions have no label" in out


@pytest.mark.golden
def test_evaluate_with_rank_pairs_gives_official_ntire_score(capsys, fixtures):
    folder = fixtures / "kvq_metric"
    expected = json.loads((folder / "expected.json").read_text())["expected"]
    for pairs in ("rank-pair-val.xlsx", "rank_pairs.json"):
        argv = ["evaluate", str(folder / "prediction.csv"), str(folder / "truth.csv"), "--rank-pairs"]
        assert main([*argv, str(folder / pairs), "--json"]) == 0
        score = json.loads(capsys.readouterr().out)["ntire2024"]
        assert score["score"] == pytest.approx(expected["score"], abs=1e-6)
        assert score["Rank1"] == pytest.approx(expected["acc_non_source"], abs=1e-6)
        assert score["Rank2"] == pytest.approx(expected["acc_source"], abs=1e-6)
    assert main([*argv, str(folder / "rank-pair-val.xlsx")]) == 0
    out = capsys.readouterr().out
    assert "NTIRE 2024 score" in out and f"{expected['score']:.6f}" in out


@pytest.mark.parametrize(
    ("pred_text", "message"),
    [
        ("filename,score\na.mp4,1\nb.mp4,oops\n", "pred.csv: line 3: score is 'oops', expected a number"),
        ("name_of_video,score\na.mp4,1\n", "pred.csv: no file-name column"),
        ("filename,score\na.mp4,1\na.mp4,2\n", "pred.csv: line 3: a.mp4 repeats line 2"),
        ("filename,score\na.mp4,1\nb.mp4,2\n", "pred.csv: no prediction for 3 labelled videos"),
        ("", "pred.csv: empty file"),
    ],
)
def test_evaluate_bad_csv_exits_1_with_one_line(capsys, scored, pred_text, message):
    pred, labels = scored
    _write(pred, pred_text)
    assert message in _one_line_error(capsys, ["evaluate", str(pred), str(labels)])


def test_evaluate_missing_files_and_bad_pairs(capsys, scored, tmp_path):
    pred, labels = scored
    assert "file not found" in _one_line_error(capsys, ["evaluate", str(tmp_path / "nope.csv"), str(labels)])
    assert "is a directory" in _one_line_error(capsys, ["evaluate", str(pred), str(tmp_path)])
    pairs = _write(tmp_path / "pairs.json", json.dumps({"nonsource": [["a.mp4", "q.mp4", 1]], "source": []}))
    err = _one_line_error(capsys, ["evaluate", str(pred), str(labels), "--rank-pairs", str(pairs)])
    assert "q.mp4" in err and "pairs.json" in err


def test_manifest_command_writes_a_readable_manifest(capsys, tmp_path):
    labels = _write(
        tmp_path / "train_data.csv", "filename,score\n" + "".join(f"train/{k}.mp4,3.{k}\n" for k in range(14))
    )
    out = tmp_path / "root" / "manifest.csv"
    argv = ["manifest", "kvq", str(labels), "--root", str(tmp_path / "root"), "-o", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos"] == 14 and summary["groups"] == 2 and summary["splits"] == {"train": 14}
    m = read_manifest(out)
    assert m.videos[0] == "train/0.mp4" and m.path(0) == tmp_path / "root" / "train/0.mp4"
    err = _one_line_error(capsys, [*argv[:-1], "--check-files"])
    assert "14 of 14 videos not found" in err


def test_manifest_command_bad_labels(capsys, tmp_path):
    labels = _write(tmp_path / "scenes.csv", "filename,score\na.mp4,3\n")
    err = _one_line_error(
        capsys, ["manifest", "taolive", str(labels), "--root", ".", "-o", str(tmp_path / "m.csv")]
    )
    assert "scenes.csv" in err and "filename,score,scene" in err

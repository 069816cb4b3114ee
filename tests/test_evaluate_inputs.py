"""`rqvqa evaluate` on the files `rqvqa predict` writes and on label files as the datasets publish them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rqvqa.cli import main
from rqvqa.data.labels import match_by_name, read_predictions, read_scores
from rqvqa.errors import InputError
from rqvqa.metrics import performance

PREDICT_HEADER = ["path", "model", "status", "score", "lower_better", "per_second", "error"]


def _predict_csv(path, rows):
    """A CSV in the layout of `rqvqa predict --csv` (result-row contract)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(PREDICT_HEADER)
        writer.writerows(rows)
    return path


def _evaluate_json(capsys, *argv):
    assert main(["evaluate", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predict_csv_against_youtube_ugc_labels(tmp_path, capsys):
    # Full paths in the predictions, ids (`vid`, no extension) and `MOSFull` in the labels; one failed row
    # (blank score, status error) that has no label, one per-second gap.
    pred = _predict_csv(
        tmp_path / "p.csv",
        [
            ["/data/ugc/Gaming_720P-0ef8.mkv", "lite", "ok", "3.1", "False", "3.0 3.2", ""],
            ["/data/ugc/Sports_1080P-2a21.mkv", "lite", "ok", "2.2", "False", "2.1  2.3", ""],
            ["/data/ugc/Vlog_480P-7a1c.mkv", "lite", "ok", "4.0", "False", "4.0", ""],
            ["/data/ugc/News_360P-1111.mkv", "lite", "ok", "2.9", "False", "", ""],
            ["/data/ugc/broken.mkv", "lite", "error", "", "False", "", "broken.mkv: no video stream"],
        ],
    )
    labels = tmp_path / "youtube_ugc.csv"
    labels.write_text(
        "vid,category,MOSFull\nGaming_720P-0ef8,Gaming,3.5\nSports_1080P-2a21,Sports,2.0\n"
        "Vlog_480P-7a1c,Vlog,4.4\nNews_360P-1111,News,3.2\n"
    )
    report = _evaluate_json(capsys, pred, labels, "--fit", "none")
    expected = performance([3.1, 2.2, 4.0, 2.9], [3.5, 2.0, 4.4, 3.2], fit="none")
    for key in ("SRCC", "PLCC", "KRCC", "RMSE"):
        assert report["metrics"][key] == pytest.approx(expected[key], abs=1e-12)
    assert report["metrics"]["n"] == 4 and report["ignored_predictions"] == 0

    rows = read_predictions(pred)
    assert [r["status"] for r in rows] == ["ok"] * 4 + ["error"]
    assert rows[1]["per_second"] == [2.1, None, 2.3]  # a blank field is a second without a score
    assert rows[3]["per_second"] == [] and rows[4]["score"] is None
    assert rows[4]["error"] == "broken.mkv: no video stream"


def test_predict_json_and_kvq_labels_with_relative_paths(tmp_path, capsys):
    # KVQ labels name files with their folder (`filename`, `score`); predictions are absolute paths from
    # `predict --json`, in the older shape without status/error.
    names = ["train/0001.mp4", "train/0002.mp4", "test/0001.mp4", "test/0002.mp4", "test/0003.mp4"]
    mos = [3.0, 2.0, 4.0, 1.5, 3.3]
    pred_scores = [0.61, 0.35, 0.66, 0.2, 0.7]
    pred = tmp_path / "p.json"
    rows = [
        {"path": f"/srv/kvq/{n}", "model": "rqvqa", "score": s, "lower_better": False, "per_second": [s]}
        for n, s in zip(names, pred_scores, strict=True)
    ]
    pred.write_text(json.dumps(rows))
    labels = tmp_path / "kvq.csv"
    labels.write_text("filename,score\n" + "".join(f"{n},{m}\n" for n, m in zip(names, mos, strict=True)))
    report = _evaluate_json(capsys, pred, labels)
    expected = performance(pred_scores, mos, fit="logistic4")
    assert report["metrics"]["SRCC"] == pytest.approx(expected["SRCC"], abs=1e-12)
    assert report["metrics"]["PLCC"] == pytest.approx(expected["PLCC"], abs=1e-9)


def test_several_models_need_model_option(tmp_path, capsys):
    pred = _predict_csv(
        tmp_path / "p.csv",
        [
            ["/v/a.mp4", "lite", "ok", "2.0", "False", "", ""],
            ["/v/b.mp4", "lite", "ok", "3.0", "False", "", ""],
            ["/v/c.mp4", "lite", "ok", "4.0", "False", "", ""],
            ["/v/a.mp4", "niqe", "ok", "9.0", "True", "", ""],
            ["/v/b.mp4", "niqe", "ok", "5.0", "True", "", ""],
            ["/v/c.mp4", "niqe", "ok", "6.0", "True", "", ""],
        ],
    )
    labels = tmp_path / "l.csv"
    labels.write_text("filename,mos\na.mp4,1\nb.mp4,2\nc.mp4,3\n")
    assert main(["evaluate", str(pred), str(labels)]) == 1
    assert "several models (lite, niqe); choose one with --model" in capsys.readouterr().err
    assert _evaluate_json(capsys, pred, labels, "--model", "lite", "--fit", "none")["metrics"]["SRCC"] == 1.0
    assert _evaluate_json(capsys, pred, labels, "--model", "niqe", "--fit", "none")["metrics"]["SRCC"] == -0.5


def test_name_matching_rules():
    pred = {"/a/x/1.mp4": 1.0, "/a/y/1.mp4": 2.0, "/a/y/2.mp4": 3.0, "3.mkv": 4.0}
    assert match_by_name(pred, {"x/1.mp4": 0, "2": 0, "3.mp4": 0, "9": 0}) == {
        "x/1.mp4": "/a/x/1.mp4",
        "2": "/a/y/2.mp4",
        "3.mp4": "3.mkv",  # same id, other container
    }
    with pytest.raises(InputError, match="label '1' matches several predictions"):
        match_by_name(pred, {"1": 0})


def test_bad_prediction_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("path,model,status,score\n/v/a.mp4,lite,ok,\n")
    with pytest.raises(InputError, match="line 2: status ok without a score"):
        read_predictions(bad)
    bad.write_text("path,model,status,score,per_second\n/v/a.mp4,lite,ok,2,1.0 nan\n")
    with pytest.raises(InputError, match=r"per_second\[1\]: nan is not a finite number"):
        read_predictions(bad)
    js = tmp_path / "p.json"
    js.write_text('{"rows": 1}')
    with pytest.raises(InputError, match="expected a JSON list of result rows"):
        read_scores(js)


def test_konvid_metadata_as_published(shared_data, tmp_path, capsys):
    """The real KoNViD-1k metadata.csv (flickr_id, mos and seven other columns) against a predict CSV whose
    paths end in `<flickr_id>.mp4`, in another order."""
    labels = shared_data / "konvid1k" / "metadata.csv"
    truth = read_scores(labels)
    assert len(truth) == 1200
    ids = list(truth)
    rng = np.random.default_rng(0)
    pred_scores = {i: truth[i] + rng.normal(0, 0.4) for i in ids}
    rows = [
        [f"/datasets/KoNViD_1k_videos/{i}.mp4", "lite", "ok", repr(pred_scores[i]), "False", "", ""]
        for i in reversed(ids)
    ]
    pred = _predict_csv(tmp_path / "p.csv", rows)
    report = _evaluate_json(capsys, pred, labels)
    expected = performance([pred_scores[i] for i in ids], [truth[i] for i in ids])
    assert report["metrics"]["n"] == 1200
    for key in ("SRCC", "KRCC", "PLCC", "RMSE"):
        assert report["metrics"][key] == pytest.approx(expected[key], abs=1e-9)


def test_jsonl_and_parquet_result_files(tmp_path, capsys):
    """The pipeline writers' formats: JSON Lines and Parquet rows."""
    rows = [
        {
            "path": "/v/a.mp4",
            "model": "lite",
            "status": "ok",
            "score": 2.0,
            "lower_better": False,
            "per_second": [2.0, None],
            "error": None,
        },
        {
            "path": "/v/b.mp4",
            "model": "lite",
            "status": "ok",
            "score": 3.5,
            "lower_better": False,
            "per_second": [3.5],
            "error": None,
        },
        {
            "path": "/v/c.mp4",
            "model": "lite",
            "status": "ok",
            "score": 3.0,
            "lower_better": False,
            "per_second": [],
            "error": None,
        },
        {
            "path": "/v/d.mp4",
            "model": "lite",
            "status": "error",
            "score": None,
            "lower_better": False,
            "per_second": [],
            "error": "/v/d.mp4: no video stream",
        },
    ]
    labels = tmp_path / "l.csv"
    labels.write_text("filename,mos\na.mp4,1\nb.mp4,3\nc.mp4,2\n")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_predictions(jsonl)[0]["per_second"] == [2.0, None]
    assert _evaluate_json(capsys, jsonl, labels, "--fit", "none")["metrics"]["SRCC"] == 1.0
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow")
    import pyarrow as pa

    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    assert read_predictions(parquet) == read_predictions(jsonl)
    assert _evaluate_json(capsys, parquet, labels, "--fit", "none")["metrics"]["SRCC"] == 1.0
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_predictions(tmp_path / "bad.parquet")

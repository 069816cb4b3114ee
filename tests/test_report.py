"""`rqvqa report`: the HTML page from predictions of generated clips, parsed and checked."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import warnings
from html.parser import HTMLParser

import pytest

from rqvqa.cli import main

pytest.importorskip("matplotlib", reason="the report needs matplotlib (pip install 'rqvqa[report]')")

MOS = [4.1, 3.6, 2.9, 2.2, 1.5]


class Page(HTMLParser):
    """Every element's tag and attributes, in document order."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def find(self, tag: str | None = None, **attrs) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if (tag is None or t == tag) and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """Five clips from sharp to blurred and noisy, and a text file named like a video, scored by
    `rqvqa predict`: `lite` with --json, `brisque` with --csv (the failed file is a row in both); labels
    (bare names) and a manifest. Returns the folder and the rows (JSON and CSV rows read back)."""
    from rqvqa.data.labels import read_predictions
    from rqvqa.video.synth import make_video

    folder = tmp_path_factory.mktemp("report")
    clips = [
        make_video(
            folder / f"clip{k}.mp4",
            width=160,
            height=120,
            fps=10,
            n_frames=30,
            blur=0.7 * k,
            noise=3 * k,
            seed=k,
        )
        for k in range(5)
    ]
    notes = folder / "notes.mp4"
    notes.write_text("not a video\n")
    videos = [str(c) for c in clips] + [str(notes)]
    for model, fmt, out in (("lite", "--json", "lite.json"), ("brisque", "--csv", "brisque.csv")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            assert main(["predict", fmt, "--model", model, *videos]) == 1  # 1: one file failed
        (folder / out).write_text(buf.getvalue())
    rows = read_predictions(folder / "lite.json") + read_predictions(folder / "brisque.csv")
    assert [r["status"] for r in rows] == (["ok"] * 5 + ["error"]) * 2
    rows = [r for r in rows if r["status"] == "ok"]
    (folder / "labels.csv").write_text(
        "filename,mos\n" + "".join(f"clip{k}.mp4,{m}\n" for k, m in enumerate(MOS))
    )
    (folder / "manifest.csv").write_text(
        "video,codec,mos\n"
        + "".join(f"clip{k}.mp4,{'h264' if k < 3 else 'hevc'},{MOS[k]}\n" for k in range(5))
    )
    return folder, rows


def _report(folder, *extra) -> tuple[str, Page]:
    out = folder / "report.html"
    assert (
        main(
            [
                "report",
                str(folder / "lite.json"),
                str(folder / "brisque.csv"),
                "-o",
                str(out),
                *map(str, extra),
            ]
        )
        == 0
    )
    text = out.read_text(encoding="utf-8")
    return text, Page(text)


def _no_external_urls(text: str, page: Page) -> None:
    assert re.search(r"https?://|//[a-z0-9-]+\.[a-z]", text, flags=re.I) is None
    for _, attrs in page.elements:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("#", "data:image/jpeg;base64,")), attrs[key]
    assert not page.find("script") and not page.find("link")


def test_report_without_labels(predictions, tmp_path):
    folder, rows = predictions
    text, page = _report(folder, "--top", "2", "--thumbnails", "2")
    ids = {a["id"] for _, a in page.elements if "id" in a and _ == "section"}
    assert {"summary", "distribution", "extremes", "failures"} <= ids and "accuracy" not in ids
    _no_external_urls(text, page)

    # the summary counts and means, per model
    lite = page.find("tr", data_model="lite")
    assert lite, "no summary row for lite"
    summary = re.search(r'<tr data-model="lite">(.*?)</tr>', text).group(1)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', summary)]
    lite_scores = [r["score"] for r in rows if r["model"] == "lite"]
    assert values[:3] == [6, 5, 1]
    assert values[3] == pytest.approx(sum(lite_scores) / 5, abs=1e-12)
    assert values[5:7] == [min(lite_scores), max(lite_scores)]

    # worst first: lite is higher-better, brisque lower-better
    worst = page.find("div", data_kind="worst")
    for k, (model, reverse) in enumerate((("lite", False), ("brisque", True))):
        expected = sorted((r for r in rows if r["model"] == model), key=lambda r: r["score"], reverse=reverse)
        shown = worst[2 * k : 2 * k + 2]
        assert [c["data-path"] for c in shown] == [r["path"] for r in expected[:2]]
        assert [float(c["data-score"]) for c in shown] == [r["score"] for r in expected[:2]]
    assert len(page.find("div", data_kind="best")) == 4

    # one per-second curve per shown video; 2 thumbnails of the worst seconds per worst video, real JPEGs,
    # except where the seconds are all within 1 % of the model's scale (lite's two worst clips wobble by
    # 0.0008 and 0.013 on its 1-5 scale): no worst second, said
    extremes = text[text.index('id="extremes"') : text.index('id="diagnosis"')]
    assert extremes.count("<svg") == 8
    assert extremes.count("y axis: the model's scale, 1 to 5") == 4  # lite's card scale
    assert len(page.find("p", data_no_worst="1")) == 2
    thumbs = page.find("img")
    assert len(thumbs) == 2 * 2  # brisque's two worst videos
    from PIL import Image

    for img in thumbs:
        jpeg = base64.b64decode(img["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.format == "JPEG" and max(im.size) == 160 and im.size[1] == 120
    assert f"{folder}/notes.mp4: not a readable video file" in text


def test_report_with_labels_equals_evaluate(predictions, capsys):
    folder, _ = predictions
    text, page = _report(folder, "--labels", folder / "labels.csv", "--manifest", folder / "manifest.csv")
    ids = {a["id"] for t, a in page.elements if t == "section" and "id" in a}
    assert {"summary", "distribution", "extremes", "accuracy", "breakdown", "failures"} <= ids
    _no_external_urls(text, page)
    capsys.readouterr()
    assert main(["evaluate", str(folder / "brisque.csv"), str(folder / "labels.csv"), "--json"]) == 0
    brisque = json.loads(capsys.readouterr().out)["metrics"]
    assert main(["evaluate", str(folder / "lite.json"), str(folder / "labels.csv"), "--json"]) == 0
    lite = json.loads(capsys.readouterr().out)["metrics"]
    accuracy = text[text.index('id="accuracy"') : text.index('id="breakdown"')]
    for model, expected in (("lite", lite), ("brisque", brisque)):
        block = accuracy[accuracy.index(f'data-model="{model}"') :]
        for key in ("SRCC", "KRCC", "PLCC", "RMSE", "PLCC_raw"):
            value = re.search(
                rf'data-metric="{key}"><td>[^<]*</td><td class="num" data-value="([^"]+)"', block
            )
            assert float(value.group(1)) == expected[key], (model, key)
    # the breakdown by the manifest's codec column (mos is a score column, not a grouping)
    groups = {a["data-group"] for a in page.find("tr") if "data-group" in a}
    assert groups == {"h264", "hevc"}
    assert 'data-column="codec"' in text and 'data-column="mos"' not in text


def test_report_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "none.json"), "-o", str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"rqvqa: error: {tmp_path / 'none.json'}: file not found"
    rows = tmp_path / "p.json"
    rows.write_text('[{"path": "a.mp4", "model": "lite", "status": "ok", "score": 3.0}]')
    assert main(["report", str(rows), "-o", str(out), "--rank-pairs", str(rows)]) == 1
    assert "--rank-pairs needs --labels" in capsys.readouterr().err
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,codec\na.mp4,h264\n")
    assert main(["report", str(rows), "-o", str(out), "--manifest", str(manifest), "--by", "fps"]) == 1
    assert "no column fps (columns: codec)" in capsys.readouterr().err
    assert not out.exists()  # nothing half-written


def _diag(**detected) -> dict:
    """A diagnosis as `rqvqa.diagnosis.Diagnoser.result()` gives it: the named kinds detected at that level
    (3 seconds, the middle one highest), the others clean."""
    from rqvqa.diagnosis import KINDS

    out = {}
    for kind in KINDS:
        level = detected.get(kind, 0.0)
        out[kind] = {
            "level": level,
            "detected": kind in detected,
            "per_second": [0.8 * level, 1.4 * level, 0.8 * level],
        }
    out["exposure"].update(under=out["exposure"]["level"], over=0.0, direction="under")
    return out


def _row(path, score, per_second=None, **fields) -> dict:
    row = {
        "path": path,
        "model": "lite",
        "status": "ok",
        "score": score,
        "lower_better": False,
        "per_second": per_second or [score, score - 0.5, score + 0.3],
        "error": None,
        "extra": {},
    }
    return {**row, **fields}


def test_report_shows_diagnosis_ood_and_notes(tmp_path):
    """Rows as the row schema gives them (video, diagnosis, notes) beside an older row without them: the
    diagnosis column, the breakdown by artifact (counts, mean score with and without), per-second curves of
    the detected artifacts, the ood warning beside an ood clip among the worst, and the notes."""
    from rqvqa.diagnosis import THRESHOLDS
    from rqvqa.results import dumps_json

    video = {"width": 960, "height": 540, "fps": 30.0, "duration": 3.0, "frames": 90}
    rows = [
        _row(
            "ood.mp4",
            1.6,
            extra={"ood": True, "ood_feature": "TLVQM_5"},
            video=video,
            diagnosis=_diag(),
            notes=["out of distribution: feature TLVQM_5 outside the training range"],
        ),
        _row(
            "banded.mp4",
            3.9,
            video=video,
            diagnosis=_diag(banding=4 * THRESHOLDS["banding"], blur=1.1 * THRESHOLDS["blur"]),
            notes=["lite is known to under-rate banding (docs/diagnosis.md)"],
        ),
        _row("blurred.mp4", 2.4, video=video, diagnosis=_diag(blur=1.2 * THRESHOLDS["blur"]), notes=[]),
        _row("clean.mp4", 3.5, video=video, diagnosis=_diag(), notes=[]),
        _row("old.mp4", 3.0),  # written before the schema: no video, diagnosis or notes
    ]
    (tmp_path / "lite.jsonl").write_text("".join(dumps_json(r) + "\n" for r in rows))
    out = tmp_path / "r.html"
    assert (
        main(["report", str(tmp_path / "lite.jsonl"), "-o", str(out), "--top", "2", "--thumbnails", "0"]) == 0
    )
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    # the worst video is the ood one: warned beside it, in the card
    worst = page.find("div", data_kind="worst")
    assert [c["data-path"] for c in worst] == ["ood.mp4", "blurred.mp4"]
    assert worst[0]["data-ood"] == "1" and worst[1]["data-ood"] == "0"
    card = text[text.index('data-path="ood.mp4"') : text.index('data-path="blurred.mp4"')]
    assert 'data-warn="ood"' in card and "out of distribution" in card
    # the summary counts the ood and the diagnosed videos
    summary = re.search(r'<tr data-model="lite">(.*?)</tr>', text).group(1)
    assert [float(v) for v in re.findall(r'data-value="([^"]+)"', summary)][-2:] == [1, 2]
    # the breakdown by artifact: 4 diagnosed videos, blur in 2 (mean 3.15), the others 2 (mean 2.55)
    diagnosis = text[text.index('id="diagnosis"') :]
    assert "4 of 5 scored videos diagnosed (1 rows without a diagnosis)" in diagnosis
    blur = re.search(r'<tr data-kind="blur">(.*?)</tr>', diagnosis).group(1)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', blur)]
    assert values[:3] == [2, pytest.approx((3.9 + 2.4) / 2), pytest.approx((1.6 + 3.5) / 2)]
    banding = re.search(r'<tr data-kind="banding">(.*?)</tr>', diagnosis).group(1)
    assert [float(v) for v in re.findall(r'data-value="([^"]+)"', banding)][0] == 1
    noise = re.search(r'<tr data-kind="noise">(.*?)</tr>', diagnosis).group(1)
    assert re.findall(r'data-value="([^"]*)"', noise)[:3] == ["0", "", repr(statistics_mean(rows[:4]))]
    # per-second curves of the detected kinds (banding, blur), each with its threshold
    assert (
        diagnosis.count("<svg") == 2
        and "banding: per second" in diagnosis
        and "blur: per second" in diagnosis
    )
    # the diagnosis column, worst first, with the notes
    listed = re.findall(
        r'<tr data-path="([^"]+)"><td class="path">.*?<td class="diagnosis">([^<]*)</td>', diagnosis
    )
    assert listed == [
        ("ood.mp4", "-"),
        ("blurred.mp4", "blur"),
        ("clean.mp4", "-"),
        ("banded.mp4", "banding (strong), blur"),
    ]
    assert "lite is known to under-rate banding" in diagnosis
    # the banded video is among the best: its card says what was detected and the note
    best = text[text.index('data-kind="best" data-rank="1"') :]
    assert 'data-issues="banding (strong), blur"' in best[: best.index("</svg>")]
    assert "under-rate banding" in best[: best.index("</svg>")]


def statistics_mean(rows) -> float:
    import statistics

    return statistics.fmean(r["score"] for r in rows)


def test_report_reads_diagnosis_from_csv_columns(tmp_path):
    """A CSV result file carries a level column per kind and the issues column (no per-second curves): the
    report's diagnosis reads them; a CSV without them (older) has none."""
    from rqvqa.data.labels import read_predictions

    (tmp_path / "new.csv").write_text(
        "path,model,status,score,lower_better,per_second,error,width,height,fps,duration,issues,notes,"
        "banding,blocking,blur,noise,exposure,stutter\n"
        'a.mp4,lite,ok,3.5,false,3.5 3.4,,960,540,30.0,2.0,"banding (strong), ood",'
        '"[""lite is known to under-rate banding""]",14.2,3.0,0.3,0.5,0.1,0\n'
        "b.mp4,lite,ok,2.5,false,2.5 2.6,,960,540,30.0,2.0,,,0.1,3.0,0.3,0.5,0.1,0\n"
    )
    a, b = read_predictions(tmp_path / "new.csv")
    assert a["diagnosis"]["banding"] == {"level": 14.2, "detected": True, "per_second": []}
    assert not a["diagnosis"]["blur"]["detected"] and b["diagnosis"]["banding"]["level"] == 0.1
    assert a["notes"] == ["lite is known to under-rate banding"] and b["notes"] == []
    assert a["video"] == {"width": 960.0, "height": 540.0, "fps": 30.0, "duration": 2.0}
    (tmp_path / "old.csv").write_text("path,model,status,score\na.mp4,lite,ok,3.5\n")
    (old,) = read_predictions(tmp_path / "old.csv")
    assert old["diagnosis"] is None and old["notes"] == [] and old["video"] is None
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "new.csv"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert '<td class="diagnosis">banding (strong)</td>' in text
    assert "under-rate banding" in text


def test_per_second_scale_and_ties():
    """Curves on the model's scale (or a minimum span), said on the plot; equal seconds have no worst."""
    from rqvqa.report.keyframes import score_axis, worst_seconds

    axis = score_axis([3.0001, 3.0, 3.0002], (1.0, 5.0))
    assert (axis.low, axis.high) == (1.0, 5.0) and "scale, 1 to 5" in axis.label
    wide = score_axis([0.5, 5.5], (1.0, 5.0))  # values off the scale widen it
    assert (wide.low, wide.high) == (0.5, 5.5)
    open_axis = score_axis([30.0, 30.001], (0.0, None))  # NIQE-like: no upper end
    assert open_axis.high - open_axis.low == pytest.approx(0.2 * 30.001) and open_axis.low >= 0.0
    assert worst_seconds([3.0, 3.0, 3.0], False, 3, (1.0, 5.0)) == []
    assert worst_seconds([3.0, 2.9998, 3.0002], False, 3, (1.0, 5.0)) == []  # a 0.0004 wobble on 1-5
    assert worst_seconds([3.0, 2.0, 3.0, 2.5], False, 3, (1.0, 5.0)) == [1, 3]  # the best ones are not worst
    assert worst_seconds([10.0, 30.0, 10.0], True, 3, (0.0, 100.0)) == [1]  # lower is better
    assert worst_seconds([None, 2.0, 3.0], False, 1) == [1]


def test_report_model_name_is_not_maths_and_errors_name_the_input(tmp_path, capsys, monkeypatch):
    rows = tmp_path / "m.json"
    name = "$\\frac{a}{$"
    rows.write_text(
        json.dumps(
            [_row(f"{k}.mp4", 2.0 + k, model=name) for k in range(3)] + [_row("x.mp4", 1.0, model="$x^2$")]
        )
    )
    out = tmp_path / "r.html"
    assert main(["report", str(rows), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert f"{name} (n=3)" in text and "$x^2$ (n=1)" in text  # drawn as written, not as maths

    from rqvqa.report import plots

    def broken(*args, **kwargs):
        raise ValueError("matplotlib could not draw this\nsecond line")

    monkeypatch.setattr(plots, "scatter", broken)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,mos\n0.mp4,1\n1.mp4,2\n2.mp4,3\n")
    capsys.readouterr()
    assert main(["report", str(rows), "--labels", str(labels), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"rqvqa: error: {rows}: cannot draw the report of model {name} (ValueError: matplotlib could not "
        "draw this)"
    )


def test_report_and_evaluate_say_the_direction(tmp_path, capsys):
    """A fit that reversed the ranking is said beside the official figures (kept); a lower-is-better model
    gets a direction note."""
    from rqvqa.results import dumps_json

    mos = [1.0, 2.0, 3.0, 4.0, 5.0, 3.5]
    pred = [4.0, 3.0, 4.5, 2.0, 1.5, 2.5]  # mostly reversed: a decreasing logistic fits best
    (tmp_path / "labels.csv").write_text(
        "filename,mos\n" + "".join(f"v{k}.mp4,{m}\n" for k, m in enumerate(mos))
    )
    for model, lower in (("lite", False), ("niqe", True)):
        rows = [_row(f"v{k}.mp4", p, model=model, lower_better=lower) for k, p in enumerate(pred)]
        (tmp_path / f"{model}.json").write_text(dumps_json(rows))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "lite.json"), str(tmp_path / "labels.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    m = report["metrics"]
    assert (
        m["SRCC"] < 0 < m["PLCC"] and m["fit_direction"] == "decreasing" and report["lower_better"] is False
    )
    (note,) = report["notes"]
    assert "reversed the predictions' ranking" in note and f"{m['SRCC']:.4f}" in note
    assert main(["evaluate", str(tmp_path / "lite.json"), str(tmp_path / "labels.csv")]) == 0
    table = capsys.readouterr().out
    assert "note: the fitted logistic4 is decreasing" in " ".join(table.split())
    assert main(["evaluate", str(tmp_path / "niqe.json"), str(tmp_path / "labels.csv"), "--json"]) == 0
    niqe = json.loads(capsys.readouterr().out)
    assert niqe["metrics"]["SRCC"] == m["SRCC"]  # the official figure is kept
    assert [n.split(":")[0] for n in niqe["notes"]] == ["the model"] and "lower scores mean better" in niqe[
        "notes"
    ][0]
    out = tmp_path / "r.html"
    argv = [
        "report",
        str(tmp_path / "lite.json"),
        str(tmp_path / "niqe.json"),
        "--labels",
        str(tmp_path / "labels.csv"),
    ]
    assert main([*argv, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    accuracy = text[text.index('id="accuracy"') :]
    lite = accuracy[: accuracy.index('data-model="niqe"')]
    assert "reversed the predictions&#x27; ranking" in lite and "lower scores mean better" not in lite
    assert "niqe: lower scores mean better quality" in accuracy[accuracy.index('data-model="niqe"') :]


@pytest.mark.parametrize("label", ["1e308", "-1e300", "2e12"])
def test_evaluate_refuses_huge_labels(tmp_path, capsys, label):
    (tmp_path / "p.csv").write_text("filename,score\n" + "".join(f"v{k}.mp4,{k}\n" for k in range(5)))
    (tmp_path / "l.csv").write_text(
        "filename,mos\n" + "".join(f"v{k}.mp4,{k + 1}\n" for k in range(4)) + f"v4.mp4,{label}\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "l.csv"), "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"rqvqa: error: {tmp_path / 'l.csv'}: the label of v4.mp4 is {float(label):g}: beyond"
    )
    assert "\n" not in err
    (tmp_path / "p.csv").write_text(
        "filename,score\n" + "".join(f"v{k}.mp4,{k}\n" for k in range(4)) + "v4.mp4,1e200\n"
    )
    (tmp_path / "l.csv").write_text("filename,mos\n" + "".join(f"v{k}.mp4,{k + 1}\n" for k in range(5)))
    assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "l.csv")]) == 1
    assert capsys.readouterr().err.startswith(
        f"rqvqa: error: {tmp_path / 'p.csv'}: the prediction of v4.mp4 is 1e+200"
    )
    (tmp_path / "l.csv").write_text("filename,mos\n" + "".join(f"v{k}.mp4,3\n" for k in range(5)))
    assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "l.csv")]) == 1
    assert "every label is 3.0: correlations need labels that differ" in capsys.readouterr().err


@pytest.mark.slow
def test_ood_flag_and_heavy_compression(tmp_path):
    """The documented limit (docs/diagnosis.md): lite's ood flag does not fire on rqvqa.video.synth clips at
    CRF 30/42/51 (their features lie inside the training range, nearer a support vector than the real
    clip's), while the clean synthetic clip is flagged; the diagnosis detects blur at CRF 42 and 51."""
    from rqvqa.api import create_predictor
    from rqvqa.diagnosis import detected_labels, diagnose_file
    from rqvqa.pipeline import score_video
    from rqvqa.video.synth import make_video

    lite = create_predictor("lite")
    rows, labels = {}, {}
    for crf in (18, 30, 42, 51):
        clip = make_video(
            tmp_path / f"s{crf}.mp4", width=480, height=270, fps=24, n_frames=48, crf=crf, seed=3
        )
        rows[crf] = score_video(lite, clip)
        labels[crf] = detected_labels(diagnose_file(clip))
    assert rows[18]["extra"]["ood"] and not any(rows[c]["extra"]["ood"] for c in (30, 42, 51))
    assert all(rows[c]["extra"]["ood_distance"] < 0.01 for c in (30, 42, 51))
    assert rows[51]["score"] > rows[30]["score"]  # the misranking the flag does not see
    assert "blur" in labels[42] and "blur" in labels[51] and labels[18] == []


def test_detected_labels_wording():
    from rqvqa.diagnosis import THRESHOLDS, detected_labels

    diagnosis = {
        "banding": {"level": 1.5 * THRESHOLDS["banding"], "detected": True},
        "blur": {"level": 1.49 * THRESHOLDS["blur"], "detected": True},
        "noise": {"level": 9.0 * THRESHOLDS["noise"], "detected": False},
        "exposure": {"level": 0.4, "detected": True, "direction": "under"},
        "stutter": {"level": None, "detected": False},
    }
    assert detected_labels(diagnosis) == ["banding (strong)", "blur", "exposure (under)"]
    assert detected_labels(None) == [] and detected_labels({}) == []

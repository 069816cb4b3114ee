"""`rqvqa report`: the HTML page from predictions of generated clips, parsed and checked."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
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

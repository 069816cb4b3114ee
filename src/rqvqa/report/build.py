"""`build_report`: one self-contained HTML page from prediction files (and labels, rank pairs, a manifest).

Everything is inlined: CSS, figures as SVG (`rqvqa.report.plots`), thumbnails as JPEG ``data:`` URIs; the page
loads nothing, runs no script and works offline. Numbers shown in tables carry their exact value in a
``data-value`` attribute, so tools (and the tests) can read them back.
"""

from __future__ import annotations

import html
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rqvqa.data._csv import header_index, read_rows
from rqvqa.data.labels import NAME_COLUMNS, match_by_name, read_predictions, read_rank_pairs, read_scores
from rqvqa.errors import InputError, RqvqaError
from rqvqa.evaluation import evaluate_scores
from rqvqa.metrics import CurveFit, srcc
from rqvqa.report import plots
from rqvqa.report.keyframes import data_uri, keyframe_jpegs, scored_frames, worst_seconds

#: a manifest column is offered as a breakdown when it has at least 2 and at most this many distinct values
MAX_GROUPS = 20
SCORE_LIKE = {"mos", "score", "mosfull", "dmos"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#203040;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}
nav a{color:#cde;margin-right:14px;font-size:14px}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:18px 0;padding:8px 18px 16px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.path{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all;font-size:12px}
.videos{display:flex;flex-wrap:wrap;gap:12px}.video{border:1px solid #e3e3e3;border-radius:4px;padding:6px;
width:460px}.thumbs{display:flex;gap:4px;flex-wrap:wrap}
.thumbs figure{margin:0;font-size:11px;text-align:center}
.thumbs img{display:block;max-width:148px;border:1px solid #ccc}.note{color:#866;font-size:13px}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}svg{max-width:100%;height:auto}
"""


@dataclass
class ModelRows:
    """The rows of one model, in input order."""

    name: str
    lower_better: bool
    rows: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "ok"]


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    """A table cell with the rounded number shown and the exact one in data-value."""
    if value is None or not math.isfinite(value):
        return '<td class="num" data-value="">n/a</td>'
    return f'<td class="num" data-value="{value!r}">{value:.{digits}f}</td>'


def _by_model(files: Sequence[Path]) -> tuple[dict[str, ModelRows], list[str]]:
    """Rows grouped by model; the last row of a (model, path) seen twice wins (noted)."""
    models: dict[str, ModelRows] = {}
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    notes: list[str] = []
    for path in files:
        for row in read_predictions(path):
            name = row["model"] or Path(path).stem
            row = {**row, "model": name, "source": str(path)}
            group = models.setdefault(name, ModelRows(name, row["lower_better"]))
            key = (name, row["path"])
            if key in seen:
                notes.append(f"{row['path']} ({name}) appears more than once; the row from {path} is shown")
                group.rows[seen[key][1]] = row
                continue
            seen[key] = (str(path), len(group.rows))
            group.rows.append(row)
    return models, notes


def _resolve_video(row: dict) -> Path | None:
    """The video file of a row: its path as written, else relative to the prediction file's folder."""
    candidates = [Path(row["path"]), Path(row["source"]).parent / row["path"]]
    return next((p for p in candidates if p.is_file()), None)


# ------------------------------------------------------------------------------------------ sections


def _summary(models: dict[str, ModelRows], files: Sequence[Path]) -> str:
    out = [
        '<section id="summary"><h2>Summary</h2><table><tr><th>model</th><th>videos</th><th>ok</th>'
        "<th>failed</th><th>mean</th><th>median</th><th>min</th><th>max</th><th>better</th></tr>"
    ]
    for m in models.values():
        scores = [r["score"] for r in m.ok]
        stats = (
            [statistics.fmean(scores), statistics.median(scores), min(scores), max(scores)]
            if scores
            else [None] * 4
        )
        out.append(
            f'<tr data-model="{_esc(m.name)}"><td>{_esc(m.name)}</td>'
            f"{_num(len(m.rows), 0)}{_num(len(m.ok), 0)}{_num(len(m.failed), 0)}"
            f"{''.join(_num(v) for v in stats)}"
            f"<td>{'lower' if m.lower_better else 'higher'}</td></tr>"
        )
    out.append(
        "</table><p>From: " + ", ".join(f'<span class="path">{_esc(f)}</span>' for f in files) + "</p>"
    )
    return "".join(out) + "</section>"


def _distribution(models: dict[str, ModelRows]) -> str:
    scores = {name: [r["score"] for r in m.ok] for name, m in models.items() if m.ok}
    body = plots.distribution(scores) if scores else '<p class="note">no successful prediction</p>'
    return f'<section id="distribution"><h2>Score distribution</h2><div class="figs">{body}</div></section>'


def _thumbnails(row: dict, seconds: list[int]) -> str:
    if not seconds:
        return ""
    video = _resolve_video(row)
    if video is None:
        return '<p class="note">thumbnails unavailable: video file not found</p>'
    try:
        jpegs = keyframe_jpegs(video, scored_frames(row, seconds))
    except RqvqaError as exc:
        return f'<p class="note">thumbnails unavailable: {_esc(exc.reason)}</p>'
    figures = [
        f'<figure><img class="thumb" alt="second {s}" src="{data_uri(jpegs[s])}">'
        f"<figcaption>second {s}: {row['per_second'][s]:.3f}</figcaption></figure>"
        for s in seconds
        if s in jpegs
    ]
    return f'<div class="thumbs">{"".join(figures)}</div>'


def _video_card(row: dict, rank: int, kind: str, lower_better: bool, thumbs: int) -> str:
    per_second = row["per_second"]
    worst = worst_seconds(per_second, lower_better, thumbs) if kind == "worst" else []
    curve = (
        plots.per_second_curve(per_second, worst, f"per-second scores, {row['score']:.3f} overall")
        if any(s is not None for s in per_second)
        else '<p class="note">no per-second scores</p>'
    )
    return (
        f'<div class="video" data-kind="{kind}" data-rank="{rank}" data-path="{_esc(row["path"])}" '
        f'data-score="{row["score"]!r}"><div><b>#{rank}</b> score {row["score"]:.4f}</div>'
        f'<div class="path">{_esc(row["path"])}</div>{curve}{_thumbnails(row, worst)}</div>'
    )


def _extremes(models: dict[str, ModelRows], top: int, thumbs: int) -> str:
    out = ['<section id="extremes"><h2>Worst and best videos</h2>']
    for m in models.values():
        ranked = sorted(m.ok, key=lambda r: r["score"], reverse=m.lower_better)  # worst first
        out.append(f'<div class="model" data-model="{_esc(m.name)}"><h3>{_esc(m.name)}: worst {top}</h3>')
        cards = [_video_card(r, k, "worst", m.lower_better, thumbs) for k, r in enumerate(ranked[:top], 1)]
        out.append(f'<div class="videos">{"".join(cards)}</div><h3>{_esc(m.name)}: best {top}</h3>')
        best = list(reversed(ranked))[:top]
        cards = [_video_card(r, k, "best", m.lower_better, thumbs) for k, r in enumerate(best, 1)]
        out.append(f'<div class="videos">{"".join(cards)}</div></div>')
    return "".join(out) + "</section>"


def _accuracy(models: dict[str, ModelRows], labels: Path, rank_pairs: Path | None, fit: str) -> str:
    truth = read_scores(labels)
    pairs = read_rank_pairs(rank_pairs) if rank_pairs is not None else None
    out = [
        f'<section id="accuracy"><h2>Accuracy against labels</h2><p>Labels: <span class="path">{_esc(labels)}'
        f"</span> ({len(truth)} videos). SRCC and KRCC on raw predictions, PLCC and RMSE after the fitted "
        f"{_esc(fit)} mapping, as <code>rqvqa evaluate</code>.</p>"
    ]
    for m in models.values():
        pred = {r["path"]: r["score"] for r in m.ok}
        out.append(f'<div class="model" data-model="{_esc(m.name)}"><h3>{_esc(m.name)}</h3>')
        try:
            covered = match_by_name(pred, truth)
            subset = {name: truth[name] for name in truth if name in covered}
            if len(subset) < 2:
                raise InputError(f"only {len(subset)} of the {len(truth)} labelled videos have a prediction")
            result = evaluate_scores(
                pred, subset, fit=fit, rank_pairs=pairs if len(subset) == len(truth) else None
            )
        except InputError as exc:
            out.append(f'<p class="note">cannot evaluate: {_esc(exc.reason)}</p></div>')
            continue
        metrics = result["metrics"]
        cells = "".join(
            f'<tr class="metric" data-metric="{key}"><td>{label}</td>{_num(metrics[key], 6)}</tr>'
            for key, label in (
                ("SRCC", "SRCC"),
                ("KRCC", "KRCC"),
                ("PLCC", "PLCC"),
                ("RMSE", "RMSE"),
                ("PLCC_raw", "PLCC (raw, no fit)"),
            )
        )
        if "ntire2024" in result:
            s = result["ntire2024"]
            cells += "".join(
                f'<tr class="metric" data-metric="{key}"><td>{label}</td>{_num(s[key], 6)}</tr>'
                for key, label in (
                    ("Rank1", "Rank1 (non-source pairs)"),
                    ("Rank2", "Rank2 (same-source pairs)"),
                    ("score", "NTIRE 2024 score"),
                )
            )
        elif pairs is not None:
            cells += '<tr><td colspan="2" class="note">NTIRE 2024 score needs every labelled video</td></tr>'
        fit_used = metrics["fit_used"]
        curve = None if metrics["fit_params"] is None else CurveFit(fit_used, tuple(metrics["fit_params"]))
        p = [pt[2] for pt in result["pairs"]]
        t = [pt[3] for pt in result["pairs"]]
        fig = plots.scatter(p, t, curve, f"{m.name}: SRCC {metrics['SRCC']:.3f}, PLCC {metrics['PLCC']:.3f}")
        note = f'<p class="note">{_esc(metrics["fit_fallback"])}</p>' if metrics["fit_fallback"] else ""
        out.append(
            f"<p>{len(subset)} of {len(truth)} labelled videos have a prediction; "
            f"fit used: {_esc(fit_used)}.</p>"
            f'<div class="figs"><table>{cells}</table>{fig}</div>{note}</div>'
        )
    return "".join(out) + "</section>"


def _read_manifest_columns(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Name -> {column: value} from any CSV with a name column, and the column names in file order."""
    rows = read_rows(path)
    (_, header), body = rows[0], rows[1:]
    columns = header_index(header)
    name_col = next((columns[c] for c in NAME_COLUMNS if c in columns), None)
    if name_col is None:
        raise InputError(
            f"no file-name column in the header (expected one of: {', '.join(NAME_COLUMNS)})", path
        )
    table = {}
    for _, fields in body:
        if len(fields) > name_col and fields[name_col]:
            table[fields[name_col]] = {
                h: (fields[k] if k < len(fields) else "") for k, h in enumerate(header)
            }
    return table, [h for k, h in enumerate(header) if k != name_col]


def _breakdown(
    models: dict[str, ModelRows], manifest: Path, by: Sequence[str] | None, truth: dict | None
) -> str:
    table, columns = _read_manifest_columns(manifest)
    if by:
        unknown = [c for c in by if c not in columns]
        if unknown:
            raise InputError(f"no column {', '.join(unknown)} (columns: {', '.join(columns)})", manifest)
        chosen = list(by)
    else:
        chosen = [
            c
            for c in columns
            if c.lower() not in SCORE_LIKE and 2 <= len({row[c] for row in table.values()}) <= MAX_GROUPS
        ]
    out = [
        f'<section id="breakdown"><h2>Breakdown</h2><p>By the columns of <span class="path">'
        f"{_esc(manifest)}</span>: {_esc(', '.join(chosen) or 'none with 2 to 20 distinct values')}.</p>"
    ]
    for m in models.values():
        pred = {r["path"]: r["score"] for r in m.ok}
        matched = match_by_name(pred, {name: 0.0 for name in table})
        label_of = match_by_name(pred, truth) if truth else {}
        truth_by_path = {path: truth[label] for label, path in label_of.items()}
        for column in chosen:
            groups: dict[str, list[tuple[float, float | None]]] = {}
            for name, path in matched.items():
                groups.setdefault(table[name][column] or "(empty)", []).append(
                    (pred[path], truth_by_path.get(path))
                )
            groups = dict(sorted(groups.items()))
            head = "<th>mean MOS</th><th>SRCC</th>" if truth else ""
            rows = []
            for value, items in groups.items():
                scores = [s for s, _ in items]
                cells = f"<td>{_esc(value)}</td>{_num(len(items), 0)}{_num(statistics.fmean(scores))}"
                if truth:
                    labelled = [(s, t) for s, t in items if t is not None]
                    mos = statistics.fmean(t for _, t in labelled) if labelled else None
                    rho = srcc(*zip(*labelled, strict=True)) if len(labelled) >= 3 else None
                    cells += _num(mos) + _num(rho)
                rows.append(f'<tr data-group="{_esc(value)}">{cells}</tr>')
            fig = plots.groups({k: [s for s, _ in v] for k, v in groups.items()}, f"{m.name} by {column}")
            out.append(
                f'<div class="model" data-model="{_esc(m.name)}" data-column="{_esc(column)}">'
                f'<h3>{_esc(m.name)} by {_esc(column)}</h3><div class="figs"><table>'
                f"<tr><th>{_esc(column)}</th><th>videos</th><th>mean score</th>{head}</tr>"
                f"{''.join(rows)}</table>{fig}</div></div>"
            )
    return "".join(out) + "</section>"


def _failures(models: dict[str, ModelRows]) -> str:
    failed = [r for m in models.values() for r in m.failed]
    if not failed:
        return ""
    rows = "".join(
        f'<tr><td>{_esc(r["model"])}</td><td class="path">{_esc(r["path"])}</td>'
        f"<td>{_esc(r['error'])}</td></tr>"
        for r in failed
    )
    return (
        f'<section id="failures"><h2>Failed videos ({len(failed)})</h2><table><tr><th>model</th>'
        f"<th>video</th><th>reason</th></tr>{rows}</table></section>"
    )


def build_report(
    results: Sequence[str | os.PathLike[str]],
    *,
    labels: str | os.PathLike[str] | None = None,
    rank_pairs: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    by: Sequence[str] | None = None,
    top: int = 5,
    thumbs: int = 3,
    fit: str = "logistic4",
    title: str = "rqvqa report",
) -> str:
    """The report's HTML. `results`: prediction files (`rqvqa predict --json/--csv`, JSON Lines), several
    models side by side; `labels`: a label CSV (evaluate's formats); `rank_pairs`: NTIRE 2024 pairs;
    `manifest`: a CSV with a name column whose other columns (or those in `by`) break the scores down;
    `top`: worst/best videos shown per model; `thumbs`: thumbnails of the worst seconds per worst video."""
    if top < 1 or thumbs < 0:
        raise InputError("--top must be at least 1 and --thumbnails at least 0")
    files = [Path(f) for f in results]
    if not files:
        raise InputError("no prediction file given")
    models, notes = _by_model(files)
    nav = [("summary", "Summary"), ("distribution", "Distribution"), ("extremes", "Worst and best")]
    sections = [_summary(models, files), _distribution(models), _extremes(models, top, thumbs)]
    truth = None
    if labels is not None:
        truth = read_scores(labels)
        nav.append(("accuracy", "Accuracy"))
        sections.append(
            _accuracy(models, Path(labels), None if rank_pairs is None else Path(rank_pairs), fit)
        )
    if manifest is not None:
        nav.append(("breakdown", "Breakdown"))
        sections.append(_breakdown(models, Path(manifest), by, truth))
    failures = _failures(models)
    if failures:
        nav.append(("failures", "Failures"))
        sections.append(failures)
    if notes:
        sections.append(
            '<section id="notes"><h2>Notes</h2><ul>'
            + "".join(f"<li>{_esc(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    links = "".join(f'<a href="#{k}">{v}</a>' for k, v in nav)
    n_videos = sum(len(m.rows) for m in models.values())
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f"<body><header><h1>{_esc(title)}</h1><div>{n_videos} predictions, {len(models)} model(s): "
        f"{_esc(', '.join(models))}</div><nav>{links}</nav></header>"
        f"<main>{''.join(sections)}</main></body></html>"
    )

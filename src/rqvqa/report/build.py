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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rqvqa.data._csv import header_index, read_rows
from rqvqa.data.labels import NAME_COLUMNS, match_by_name, read_predictions, read_rank_pairs, read_scores
from rqvqa.diagnosis.thresholds import KINDS, SCALES, STRONG, THRESHOLDS, detected_labels
from rqvqa.errors import InputError, RqvqaError
from rqvqa.evaluation import direction_notes, evaluate_scores
from rqvqa.metrics import CurveFit, srcc
from rqvqa.registry import REGISTRY, RegistryError
from rqvqa.report import plots
from rqvqa.report.keyframes import (
    MIN_SPAN_SHARE,
    SAME_SHARE,
    data_uri,
    keyframe_jpegs,
    score_axis,
    scored_frames,
    worst_seconds,
)

#: a manifest column is offered as a breakdown when it has at least 2 and at most this many distinct values
MAX_GROUPS = 20
SCORE_LIKE = {"mos", "score", "mosfull", "dmos"}
#: videos listed in a model's diagnosis table (worst first), and curves drawn per detected artifact
MAX_LISTED = 100
CURVES_PER_KIND = 3

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
.warn{background:#fff4e0;border-left:4px solid #e08a00;color:#6a4000;font-size:13px;padding:2px 6px;
margin:3px 0}.issues{font-size:13px;margin:3px 0}.issues b{color:#a33}
ul.notes{margin:2px 0;padding-left:18px;font-size:12px;color:#555}
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

    @property
    def score_range(self) -> tuple[float | None, float | None] | None:
        """The zoo card's score range (None for a model the registry does not know: a trained ensemble)."""
        try:
            return tuple(REGISTRY.model(self.name).score_range)
        except RegistryError:
            return None


def ood(row: dict) -> bool:
    return bool((row.get("extra") or {}).get("ood"))


def reader_notes(row: dict) -> list[str]:
    """What the row tells a reader: its `notes`, and for rows written before notes existed the ood flag of
    its `extra` in the same words."""
    notes = list(row.get("notes") or [])
    if ood(row) and not any(n.startswith("out of distribution") for n in notes):
        feature = (row.get("extra") or {}).get("ood_feature")
        where = (
            f"feature {feature} outside the training range" if feature is not None else "far from training"
        )
        notes.insert(0, f"out of distribution: {where}; the score is an extrapolation")
    return notes


@contextmanager
def _naming(*groups: ModelRows):
    """Any unexpected failure while drawing these models' parts becomes a one-line InputError that names
    the prediction files and the model (a name matplotlib cannot draw, a value it cannot place)."""
    try:
        yield
    except RqvqaError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised as a one-line error naming the input
        sources = ", ".join(dict.fromkeys(r["source"] for m in groups for r in m.rows))
        names = ", ".join(m.name for m in groups)
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(
            f"cannot draw the report of model {names} ({type(exc).__name__}: {detail})", sources
        ) from exc


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
        "<th>failed</th><th>mean</th><th>median</th><th>min</th><th>max</th><th>better</th>"
        "<th>ood</th><th>with artifacts</th></tr>"
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
            f"<td>{'lower' if m.lower_better else 'higher'}</td>"
            f"{_num(sum(ood(r) for r in m.ok), 0)}"
            f"{_num(sum(bool(detected_labels(r.get('diagnosis'))) for r in m.ok), 0)}</tr>"
        )
    out.append(
        "</table><p>From: " + ", ".join(f'<span class="path">{_esc(f)}</span>' for f in files) + "</p>"
        '<p class="note">ood: videos whose features lie outside what the model was trained on (its score is '
        "an extrapolation); with artifacts: videos in which the diagnosis detected an artifact (section "
        '<a href="#diagnosis">Diagnosis</a>).</p>'
    )
    return "".join(out) + "</section>"


def _distribution(models: dict[str, ModelRows]) -> str:
    scores = {name: [r["score"] for r in m.ok] for name, m in models.items() if m.ok}
    with _naming(*models.values()):
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


def _reading(row: dict) -> str:
    """The ood warning, the detected artifacts and the notes of a row, as HTML (empty: nothing to say)."""
    out = []
    if ood(row):
        feature = (row.get("extra") or {}).get("ood_feature")
        where = f" (feature {_esc(feature)} outside the training range)" if feature is not None else ""
        out.append(
            f'<div class="warn" data-warn="ood">&#9888; out of distribution{where}: this score is an '
            "extrapolation, not a measurement</div>"
        )
    labels = detected_labels(row.get("diagnosis"))
    if labels:
        out.append(
            f'<div class="issues" data-issues="{_esc(", ".join(labels))}">Detected: <b>'
            f"{_esc(', '.join(labels))}</b></div>"
        )
    notes = [n for n in reader_notes(row) if not (ood(row) and n.startswith("out of distribution"))]
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    return "".join(out)


def _video_card(row: dict, rank: int, kind: str, m: ModelRows, thumbs: int) -> str:
    per_second = row["per_second"]
    axis = score_axis(per_second, m.score_range)
    worst = worst_seconds(per_second, m.lower_better, thumbs, m.score_range) if kind == "worst" else []
    scored = [s for s in per_second if s is not None]
    if not scored:
        curve = '<p class="note">no per-second scores</p>'
    else:
        curve = plots.per_second_curve(
            per_second, worst, f"per-second scores, {row['score']:.3f} overall", axis
        )
        if kind == "worst" and thumbs and not worst and len(scored) > 1:
            curve += (
                f'<p class="note" data-no-worst="1">no worst second: every second scores within '
                f"{SAME_SHARE:.0%} of the plotted scale of the best one</p>"
            )
    return (
        f'<div class="video" data-kind="{kind}" data-rank="{rank}" data-path="{_esc(row["path"])}" '
        f'data-score="{row["score"]!r}" data-ood="{int(ood(row))}"><div><b>#{rank}</b> score '
        f'{row["score"]:.4f}</div><div class="path">{_esc(row["path"])}</div>{_reading(row)}{curve}'
        f"{_thumbnails(row, worst)}</div>"
    )


def _extremes(models: dict[str, ModelRows], top: int, thumbs: int) -> str:
    out = [
        '<section id="extremes"><h2>Worst and best videos</h2><p class="note">Per-second curves are '
        "drawn on the model's scale (or, for a model without a closed scale, a span of at least "
        f"{MIN_SPAN_SHARE:.0%} of the score), so a small wobble stays small; seconds within "
        f"{SAME_SHARE:.0%} of "
        "that scale of the best second are not called worst.</p>"
    ]
    for m in models.values():
        ranked = sorted(m.ok, key=lambda r: r["score"], reverse=m.lower_better)  # worst first
        out.append(f'<div class="model" data-model="{_esc(m.name)}"><h3>{_esc(m.name)}: worst {top}</h3>')
        with _naming(m):
            cards = [_video_card(r, k, "worst", m, thumbs) for k, r in enumerate(ranked[:top], 1)]
        out.append(f'<div class="videos">{"".join(cards)}</div><h3>{_esc(m.name)}: best {top}</h3>')
        best = list(reversed(ranked))[:top]
        with _naming(m):
            cards = [_video_card(r, k, "best", m, thumbs) for k, r in enumerate(best, 1)]
        out.append(f'<div class="videos">{"".join(cards)}</div></div>')
    return "".join(out) + "</section>"


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _diagnosis(models: dict[str, ModelRows]) -> str:
    """Per model: how many videos have each detected artifact and their mean score with and without it, the
    per-second curves of the strongest detected ones, and the videos with their diagnosis column."""
    out = [
        '<section id="diagnosis"><h2>Diagnosis</h2><p class="note">Artifacts detected in each video by '
        "<code>rqvqa.diagnosis</code> (levels on documented scales, thresholds calibrated on graded "
        f"degradations: docs/diagnosis.md); <i>strong</i> from {STRONG:g} times the threshold. Rows written "
        "without a diagnosis (older result files, <code>--no-diagnosis</code>) are counted apart.</p>"
    ]
    for m in models.values():
        diagnosed = [r for r in m.ok if r.get("diagnosis")]
        out.append(f'<div class="model" data-model="{_esc(m.name)}"><h3>{_esc(m.name)}</h3>')
        if not diagnosed:
            out.append(f'<p class="note">no diagnosis in these rows ({len(m.ok)} scored videos)</p></div>')
            continue
        rows = []
        figures = []
        for kind in KINDS:
            with_it = [r for r in diagnosed if (r["diagnosis"].get(kind) or {}).get("detected")]
            without = [r for r in diagnosed if not (r["diagnosis"].get(kind) or {}).get("detected")]
            rows.append(
                f'<tr data-kind="{kind}"><td>{kind}</td>{_num(len(with_it), 0)}'
                f"{_num(_mean([r['score'] for r in with_it]))}{_num(_mean([r['score'] for r in without]))}"
                f"{_num(THRESHOLDS[kind], 3)}<td>{_esc(SCALES[kind])}</td></tr>"
            )
            strongest = sorted(
                (r for r in with_it if r["diagnosis"][kind].get("per_second")),
                key=lambda r: -(r["diagnosis"][kind].get("level") or 0.0),
            )[:CURVES_PER_KIND]
            if strongest:
                curves = {Path(r["path"]).name: r["diagnosis"][kind]["per_second"] for r in strongest}
                with _naming(m):
                    figures.append(
                        plots.artifact_curves(
                            curves, THRESHOLDS[kind], f"{kind}: per second", f"{kind} level"
                        )
                    )
        out.append(
            f"<p>{len(diagnosed)} of {len(m.ok)} scored videos diagnosed"
            + (
                f" ({len(m.ok) - len(diagnosed)} rows without a diagnosis)"
                if len(diagnosed) < len(m.ok)
                else ""
            )
            + '.</p><table class="artifacts"><tr><th>artifact</th><th>videos with it</th>'
            "<th>mean score with</th><th>mean score without</th><th>threshold</th><th>scale</th></tr>"
            + "".join(rows)
            + "</table>"
        )
        if figures:
            out.append(f'<div class="figs">{"".join(figures)}</div>')
        ranked = sorted(diagnosed, key=lambda r: r["score"], reverse=m.lower_better)  # worst first
        listed = "".join(
            f'<tr data-path="{_esc(r["path"])}"><td class="path">{_esc(r["path"])}</td>{_num(r["score"])}'
            f'<td class="diagnosis">{_esc(", ".join(detected_labels(r["diagnosis"])) or "-")}</td>'
            f"<td>{_esc('; '.join(reader_notes(r)))}</td></tr>"
            for r in ranked[:MAX_LISTED]
        )
        more = (
            f'<p class="note">and {len(ranked) - MAX_LISTED} more (every row is in the result file)</p>'
            if len(ranked) > MAX_LISTED
            else ""
        )
        out.append(
            '<table class="diagnosed"><tr><th>video (worst first)</th><th>score</th><th>diagnosis</th>'
            f"<th>notes</th></tr>{listed}</table>{more}</div>"
        )
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
        with _naming(m):
            fig = plots.scatter(
                p, t, curve, f"{m.name}: SRCC {metrics['SRCC']:.3f}, PLCC {metrics['PLCC']:.3f}"
            )
        note = f'<p class="note">{_esc(metrics["fit_fallback"])}</p>' if metrics["fit_fallback"] else ""
        note += "".join(
            f'<div class="warn" data-warn="direction">{_esc(n)}</div>'
            for n in direction_notes(metrics, m.lower_better, m.name)
        )
        out.append(
            f"<p>{len(subset)} of {len(truth)} labelled videos have a prediction; "
            f"fit used: {_esc(fit_used)}.</p>"
            f'{note}<div class="figs"><table>{cells}</table>{fig}</div></div>'
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
            with _naming(m):
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
    nav.append(("diagnosis", "Diagnosis"))
    sections.append(_diagnosis(models))
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

"""`rqvqa evaluate PREDICTIONS.csv LABELS.csv`: correlation metrics and the NTIRE 2024 S-UGC score."""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.data.labels import read_direction, read_rank_pairs, read_scores
from rqvqa.errors import InputError
from rqvqa.evaluation import direction_notes, evaluate_scores
from rqvqa.metrics import FITS
from rqvqa.results import dumps_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score predictions against labels (SRCC, PLCC, KRCC, RMSE, NTIRE 2024 score)",
        description="Compare predicted scores with labels. Predictions: the CSV or JSON `rqvqa predict` "
        "writes (failed rows are left out), or any CSV with a name and a score column. Labels: a CSV with a "
        "name column (filename/video/name/path/flickr_id/vid) and a score column (score/mos/MOSFull), e.g. "
        "KoNViD-1k's metadata.csv, YouTube-UGC's or KVQ's label files as published. A full path matches a "
        "bare file name, a relative path or an id (the name without extension). SRCC and KRCC use "
        "raw predictions; PLCC and RMSE use the fitted predictions (--fit). With --rank-pairs the NTIRE 2024 "
        "S-UGC score (0.45 SRCC + 0.45 raw PLCC + 0.05 Rank1 + 0.05 Rank2) is added.",
    )
    p.add_argument(
        "predictions",
        type=Path,
        help="predictions: `rqvqa predict --csv/--json` output or a filename,score CSV",
    )
    p.add_argument("labels", type=Path, help="CSV of ground-truth scores (filename,score or a manifest)")
    p.add_argument(
        "--rank-pairs", type=Path, help="NTIRE 2024 rank pairs (.xlsx with sheets nonsource/source, or .json)"
    )
    p.add_argument(
        "--fit",
        choices=FITS,
        default="logistic4",
        help="mapping before PLCC/RMSE: logistic4 (RQ-VQA/VIDEVAL, default), logistic5, or none (raw)",
    )
    p.add_argument("--model", help="the model to evaluate when the predictions hold several")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def evaluate(
    predictions: Path,
    labels: Path,
    rank_pairs: Path | None = None,
    fit: str = "logistic4",
    model: str | None = None,
) -> dict:
    """The report the command prints, as a dict."""
    pred_by_path = read_scores(predictions, model=model)
    truth_by_name = read_scores(labels)
    pairs = read_rank_pairs(rank_pairs) if rank_pairs is not None else None
    try:
        result = evaluate_scores(pred_by_path, truth_by_name, fit=fit, rank_pairs=pairs)
    except InputError as exc:
        # name the file the problem is in: the predictions lack a video or a pair's video, or the labels
        # cannot be scored
        if exc.reason.endswith("(in the rank pairs)"):
            reason = exc.reason.replace("in the rank pairs", f"pairs from {rank_pairs}")
            raise InputError(reason, predictions) from None
        where = (
            predictions if exc.reason.startswith(("no prediction", "label ", "the prediction")) else labels
        )
        raise InputError(exc.reason, where) from None
    lower_better = read_direction(predictions, model)
    report = {
        "predictions": str(predictions),
        "labels": str(labels),
        "ignored_predictions": result["ignored_predictions"],
        "metrics": result["metrics"],
        "lower_better": lower_better,
        # beside the official figures (kept as computed): a reversed ranking, the model's direction
        "notes": direction_notes(result["metrics"], lower_better, model or "the model"),
    }
    if "ntire2024" in result:
        report["ntire2024"] = result["ntire2024"]
    return report


def _print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["metrics"]
    fit = m["fit_used"] if m["fit_used"] == m["fit"] else f"{m['fit_used']} ({m['fit']} failed)"
    table = Table(title=f"{m['n']} videos")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("fit before PLCC/RMSE", fit)
    for key in ("SRCC", "KRCC", "PLCC", "RMSE", "PLCC_raw"):
        label = "PLCC (raw, no fit)" if key == "PLCC_raw" else key
        table.add_row(label, f"{m[key]:.6f}")
    if "ntire2024" in report:
        s = report["ntire2024"]
        table.add_section()
        table.add_row(f"Rank1 (non-source, {s['n_nonsource_pairs']} pairs)", f"{s['Rank1']:.6f}")
        table.add_row(f"Rank2 (same-source, {s['n_source_pairs']} pairs)", f"{s['Rank2']:.6f}")
        table.add_row("NTIRE 2024 score", f"{s['score']:.6f}")
    console = Console()
    console.print(table)
    if m["fit_fallback"]:
        console.print(f"note: {m['fit_fallback']}")
    for note in report["notes"]:
        console.print(f"note: {note}", markup=False)
    if report["ignored_predictions"]:
        console.print(f"note: {report['ignored_predictions']} predictions have no label and were ignored")


def run(args: argparse.Namespace) -> int:
    report = evaluate(args.predictions, args.labels, args.rank_pairs, args.fit, args.model)
    if args.json:
        print(dumps_json(report, indent=1))
    else:
        _print_table(report)
    return 0

"""`rqvqa evaluate PREDICTIONS.csv LABELS.csv`: correlation metrics and the NTIRE 2024 S-UGC score."""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.data.labels import read_rank_pairs, read_scores
from rqvqa.errors import InputError
from rqvqa.metrics import FITS, ntire2024_score, performance, plcc
from rqvqa.results import dumps_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score predictions against labels (SRCC, PLCC, KRCC, RMSE, NTIRE 2024 score)",
        description="Compare predicted scores with labels. Both CSVs have a header with a name column "
        "(filename/video/name) and a score column (score/mos); rows are matched by name. SRCC and KRCC use "
        "raw predictions; PLCC and RMSE use the fitted predictions (--fit). With --rank-pairs the NTIRE 2024 "
        "S-UGC score (0.45 SRCC + 0.45 raw PLCC + 0.05 Rank1 + 0.05 Rank2) is added.",
    )
    p.add_argument("predictions", type=Path, help="CSV of predicted scores (filename,score)")
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
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def evaluate(predictions: Path, labels: Path, rank_pairs: Path | None = None, fit: str = "logistic4") -> dict:
    """The report the command prints, as a dict."""
    pred_by_name = read_scores(predictions)
    truth_by_name = read_scores(labels)
    missing = [name for name in truth_by_name if name not in pred_by_name]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InputError(f"no prediction for {len(missing)} labelled videos ({shown})", predictions)
    names = list(truth_by_name)
    pred = [pred_by_name[n] for n in names]
    truth = [truth_by_name[n] for n in names]
    try:
        metrics = performance(pred, truth, fit=fit)
        metrics["PLCC_raw"] = plcc(pred, truth, fit=None)
    except InputError as exc:
        raise InputError(exc.reason, labels) from None
    report = {
        "predictions": str(predictions),
        "labels": str(labels),
        "ignored_predictions": len(pred_by_name) - len(names),
        "metrics": metrics,
    }
    if rank_pairs is not None:
        pairs = read_rank_pairs(rank_pairs)
        try:
            report["ntire2024"] = ntire2024_score(
                pred_by_name, truth_by_name, pairs["nonsource"], pairs["source"]
            )
        except InputError as exc:
            raise InputError(f"{exc.reason} (pairs from {rank_pairs})", predictions) from None
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
    if report["ignored_predictions"]:
        console.print(f"note: {report['ignored_predictions']} predictions have no label and were ignored")


def run(args: argparse.Namespace) -> int:
    report = evaluate(args.predictions, args.labels, args.rank_pairs, args.fit)
    if args.json:
        print(dumps_json(report, indent=1))
    else:
        _print_table(report)
    return 0

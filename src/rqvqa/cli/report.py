"""`rqvqa report RESULTS... [--labels LABELS.csv] -o report.html`: one self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.errors import InputError
from rqvqa.files import atomic_write_text
from rqvqa.metrics import FITS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="a self-contained HTML report of predictions (distributions, worst seconds, accuracy)",
        description="Write one HTML file (works offline: figures as inline SVG, thumbnails inlined) from "
        "prediction files (`rqvqa predict --json/--csv` output or JSON Lines; several models side by side): "
        "score distribution per model, the worst and best videos with their per-second curves and key frames "
        "of the worst seconds, and with --labels the scatter against MOS with the fitted logistic and "
        "SRCC/PLCC/KRCC/RMSE as `rqvqa evaluate` computes them.",
    )
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="prediction files")
    p.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    p.add_argument(
        "--labels", type=Path, help="label CSV (evaluate's formats: KoNViD-1k, YouTube-UGC, KVQ...)"
    )
    p.add_argument("--rank-pairs", type=Path, help="NTIRE 2024 rank pairs (.xlsx or .json), with --labels")
    p.add_argument("--fit", choices=FITS, default="logistic4", help="mapping before PLCC/RMSE (as evaluate)")
    p.add_argument(
        "--manifest", type=Path, help="CSV with a name column whose other columns break scores down"
    )
    p.add_argument(
        "--by", action="append", metavar="COLUMN", help="manifest column to break down by (repeat)"
    )
    p.add_argument("--top", type=int, default=5, help="worst and best videos shown per model (default 5)")
    p.add_argument(
        "--thumbnails",
        type=int,
        default=3,
        help="key frames of the worst seconds per worst video (default 3)",
    )
    p.add_argument("--title", default="rqvqa report", help="the page title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rqvqa.report import build_report

    if args.rank_pairs is not None and args.labels is None:
        raise InputError("--rank-pairs needs --labels")
    page = build_report(
        args.results,
        labels=args.labels,
        rank_pairs=args.rank_pairs,
        manifest=args.manifest,
        by=args.by,
        top=args.top,
        thumbs=args.thumbnails,
        fit=args.fit,
        title=args.title,
    )
    out = args.output
    # written whole or not at all: a half-written report would look like a complete one
    atomic_write_text(out, page)
    print(f"wrote {out} ({len(page.encode('utf-8')) // 1024} kB)")
    return 0

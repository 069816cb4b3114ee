"""`rqvqa benchmark-features FEATURES MOS_FILE [--splits 100] [--test FEATURES MOS] [--mos-column NAME]
[--test-mos-column NAME]`: the UGC-VQA feature benchmark, within one dataset or across two (train on one, test
on another). Each MOS file is read by its own published layout (KoNViD-1k's `mos`, YouTube-UGC's `MOSFull`),
and `--mos-column` / `--test-mos-column` override it per file.

Evaluates any per-video feature matrix the way the UGC-VQA benchmark evaluated BRISQUE, VIDEVAL & co:
random 80/20 splits, an RBF SVR whose (C, gamma) is grid-searched on a validation part of each training set,
median (std) SRCC / KRCC / PLCC / RMSE over the splits (see `rqvqa.benchmark`).
"""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark-features", help="UGC-VQA benchmark of a feature matrix (SVR, random splits)"
    )
    p.add_argument("features", help="features: .mat with feats_mat, .npy or .csv (one row per video)")
    p.add_argument("mos_file", help="MOS: .mat (MOS), a metadata CSV with a mos column, or a one-column CSV")
    p.add_argument("--splits", type=int, default=100, help="number of random 80/20 splits (default 100)")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: all CPU cores)")
    p.add_argument(
        "--test",
        nargs=2,
        metavar=("FEATURES", "MOS"),
        help="cross-dataset: train on all of FEATURES/MOS_FILE, test on all of these",
    )
    p.add_argument(
        "--mos-column",
        default=None,
        metavar="NAME",
        help="MOS column of MOS_FILE (default: by the published layouts: mos, score, MOSFull, scores, dmos)",
    )
    p.add_argument(
        "--test-mos-column",
        default=None,
        metavar="NAME",
        help="MOS column of the --test MOS file (default: by the published layouts, as --mos-column)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (summary and every split)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rqvqa.benchmark import METRICS, STEPS_PER_SPLIT, load_features, load_mos, run_benchmark
    from rqvqa.errors import ConfigError
    from rqvqa.results import dumps_json

    if args.splits < 1:
        raise ConfigError("--splits must be at least 1")
    x = load_features(args.features)
    y = load_mos(args.mos_file, args.mos_column)
    test = None
    if args.test:
        # each label file read by its own layout (KoNViD-1k's mos, YouTube-UGC's MOSFull...)
        test = (load_features(args.test[0]), load_mos(args.test[1], args.test_mos_column))
    elif args.test_mos_column:
        raise ConfigError("--test-mos-column needs --test")
    jobs = args.jobs or max(1, os.cpu_count() or 1)
    from tqdm import tqdm

    # the bar counts the SVR grid (one step per gamma of each split) and shows the time left
    print(f"{args.splits} split(s) x {STEPS_PER_SPLIT} grid steps on {jobs} process(es)", file=sys.stderr)
    with tqdm(total=args.splits * STEPS_PER_SPLIT, desc="SVR grid", unit="step", file=sys.stderr) as bar:
        result = run_benchmark(
            x, y, n_splits=args.splits, n_jobs=min(jobs, args.splits), progress=bar.update, test=test
        )
    if args.json:
        print(dumps_json(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "metric",
        "median",
        "std",
        title=f"{result['n_videos']} videos x {result['n_features']} features, {result['n_splits']} splits"
        + (f", tested on {result['n_test_videos']} other videos" if test is not None else ""),
    )
    for k in METRICS:
        table.add_row(k, f"{result['median'][k]:.4f}", f"{result['std'][k]:.4f}")
    Console().print(table)
    return 0

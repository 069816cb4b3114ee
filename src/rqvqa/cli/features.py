"""`rqvqa features --set videval|videval-light|videval-light480|brisque VIDEO... [--json|--csv|--npy OUT]`:
per-video hand-crafted features in the official column order, one row per video (failed videos included, with
their reason), so benchmark feature matrices can be computed without MATLAB."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

SETS = ("videval", "videval-light", "videval-light480", "brisque")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="compute VIDEVAL / VIDEVAL_light / BRISQUE video features")
    p.add_argument("videos", nargs="+", help="video files")
    p.add_argument("--set", dest="feature_set", choices=SETS, default="videval-light", help="feature set")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list of rows (the default)")
    out.add_argument("--csv", action="store_true", help="print CSV: path, status, error, features")
    out.add_argument(
        "--npy",
        metavar="OUT",
        help="write a (videos, features) float64 matrix, rows in input order; a failed video or a "
        "feature without any measurable frame is 0 (the benchmark's NaN convention), failures on stderr",
    )
    p.set_defaults(func=run)


def feature_names(feature_set: str) -> list[str]:
    if feature_set == "brisque":
        from rqvqa.baselines.brisque import FEATURE_NAMES

        return list(FEATURE_NAMES)
    from rqvqa.videval.extract import FEATURE_NAMES

    return list(FEATURE_NAMES)


def compute(path: str, feature_set: str) -> list[float | None]:
    """The feature row of one video (None where no frame was measurable for that feature)."""
    import numpy as np

    if feature_set == "brisque":
        from rqvqa.baselines.video import video_features

        values = video_features(path, brisque=True).brisque_video
    else:
        from rqvqa.videval.extract import videval_features

        values = videval_features(path, feature_set).features
    return [float(v) if np.isfinite(v) else None for v in values]


def feature_rows(paths: list[str], feature_set: str) -> list[dict]:
    """One dict per video: path, set, status ("ok" | "error"), features (list or None), error (one line)."""
    from rqvqa.errors import RqvqaError

    rows = []
    for path in paths:
        row = {"path": path, "set": feature_set, "status": "ok", "features": None, "error": None}
        try:
            row["features"] = compute(path, feature_set)
        except RqvqaError as exc:
            row.update(status="error", error=str(exc))
        except Exception as exc:  # a failing video never stops the others
            row.update(status="error", error=f"{path}: {type(exc).__name__}: {exc}".replace("\n", " "))
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    rows = feature_rows(args.videos, args.feature_set)
    names = feature_names(args.feature_set)
    failed = [r for r in rows if r["status"] != "ok"]
    if args.npy:
        import numpy as np

        matrix = np.array(
            [[0.0 if v is None else v for v in (r["features"] or [None] * len(names))] for r in rows]
        )
        np.save(Path(args.npy), matrix.reshape(len(rows), len(names)), allow_pickle=False)
        for r in failed:
            print(f"rqvqa: error: {r['error']}", file=sys.stderr)
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["path", "status", "error", *names])
        for r in rows:
            values = ["" if v is None else repr(v) for v in (r["features"] or [None] * len(names))]
            writer.writerow([r["path"], r["status"], r["error"] or "", *values])
    else:
        print(json.dumps({"names": names, "rows": rows}, indent=1, allow_nan=False))
    return 1 if failed else 0

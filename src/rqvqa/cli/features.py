"""`rqvqa features --set videval|videval-light|videval-light480|brisque VIDEO... [--json|--csv|--npy OUT]`:
per-video hand-crafted features in the official column order, so benchmark feature matrices can be computed
without MATLAB.

A feature set is read by the model of its family (`videval`, `videval-light`, `lite` for VIDEVAL_light480,
`brisque`) through the same pipeline as `rqvqa predict`: the rows are predict's rows (one per input, failed
ones with their reason), whose `extra.features` names every feature. `--csv` and `--npy` lay them out as a
matrix."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from rqvqa.cli.predict import add_collection_arguments, require_collection_extras
from rqvqa.results import STATUS_OK, dumps_json

#: feature set -> the model whose rows carry it
SETS = {
    "videval": "videval",
    "videval-light": "videval-light",
    "videval-light480": "lite",
    "brisque": "brisque",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="compute VIDEVAL / VIDEVAL_light / BRISQUE video features")
    p.add_argument("videos", nargs="+", metavar="INPUT", help="video files, folders, globs, manifests, -")
    p.add_argument(
        "--set", dest="feature_set", choices=list(SETS), default="videval-light", help="feature set"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list of predict's rows (the default)")
    out.add_argument(
        "--csv", action="store_true", help="print CSV: path, status, error, one column per feature"
    )
    out.add_argument(
        "--npy",
        metavar="OUT",
        help="write a (videos, features) float64 matrix, rows in input order; a failed video or a "
        "feature without any measurable frame is 0 (the benchmark's NaN convention), failures on stderr",
    )
    add_collection_arguments(p)
    p.set_defaults(func=run)


def feature_names(feature_set: str) -> list[str]:
    if feature_set == "brisque":
        from rqvqa.families.classic.brisque import FEATURE_NAMES

        return list(FEATURE_NAMES)
    from rqvqa.families.videval.extract import FEATURE_NAMES

    return list(FEATURE_NAMES)


def feature_rows(videos: list[str], feature_set: str, **options) -> list[dict]:
    """predict's rows of the set's model, in input order (`options`: those of `score_collection`)."""
    from rqvqa.api import create_predictor
    from rqvqa.pipeline import score_collection

    predictor = create_predictor(SETS[feature_set])
    return list(score_collection(predictor, videos, ordered=True, **options))


def values(row: dict, names: list[str]) -> list[float | None]:
    features = row["extra"].get("features") or {} if row["status"] == STATUS_OK else {}
    return [features.get(name) for name in names]


def run(args: argparse.Namespace) -> int:
    require_collection_extras(args)
    rows = feature_rows(
        args.videos,
        args.feature_set,
        engine=args.engine,
        workers=args.workers,
        batch_size=args.batch_size,
        out=args.out,
        resume=args.resume,
        address=args.address,
        debug=args.debug,
        diagnosis=args.diagnosis,
    )
    names = feature_names(args.feature_set)
    failed = [r for r in rows if r["status"] != STATUS_OK]
    if args.npy:
        import numpy as np

        matrix = np.array(
            [[0.0 if v is None else v for v in values(r, names)] for r in rows], dtype=np.float64
        )
        np.save(Path(args.npy), matrix.reshape(len(rows), len(names)), allow_pickle=False)
        for r in failed:
            print(f"rqvqa: error: {r['error']}", file=sys.stderr)
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["path", "status", "error", *names])
        for r in rows:
            cells = ["" if v is None else repr(v) for v in values(r, names)]
            writer.writerow([r["path"], r["status"], r["error"] or "", *cells])
    else:
        print(dumps_json(rows, indent=1))
    return 1 if failed else 0

"""`rqvqa predict VIDEO... --model NAME`: score videos with a model from the zoo (`rqvqa.zoo`).

Output: a table (default), `--json` (a list of result rows, see `rqvqa.results`) or `--csv` (one row per
video) on stdout; a progress bar on stderr when several files are scored. Every input gets a row: a video that
fails (for any reason) gets `status` "error" and a one-line `error`, is also reported on stderr, and does not
stop the batch; the exit code is 1 if any file failed (stderr says how many).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from rqvqa.errors import ConfigError
from rqvqa.results import CSV_COLUMNS, STATUS_OK, csv_row, dumps_json, score_video
from rqvqa.video.reader import parse_pixels, video_limits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score videos with a quality model (default: the offline lite model)")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="video files")
    p.add_argument("--model", default="lite", help="model name (see --list-models); default: lite")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    fmt.add_argument(
        "--csv", action="store_true", help="print CSV (path, model, score, ...) instead of a table"
    )
    p.add_argument("--weights", default=None, help="weights folder or file (models that need weights)")
    p.add_argument("--device", default="cpu", help="torch device for neural models (cpu, cuda, cuda:1...)")
    p.add_argument(
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="fast mode for lite/brisque/niqe: score at most N of the one-per-second frames",
    )
    p.add_argument(
        "--max-pixels",
        type=parse_pixels,
        default=None,
        metavar="N|WxH",
        help="refuse videos whose frames have more pixels (default 7680x4320, 8K UHD)",
    )
    p.add_argument("--list-models", action="store_true", help="list the available models and exit")
    p.set_defaults(func=run)


def _predictor(args: argparse.Namespace):
    from rqvqa.zoo import create_predictor

    options: dict[str, Any] = {"weights": args.weights, "device": args.device}
    if args.max_frames is not None:
        if args.max_frames < 1:
            raise ConfigError("--max-frames must be at least 1")
        options["max_frames"] = args.max_frames
    return create_predictor(args.model, **options)


def _list_models(as_json: bool) -> int:
    from rqvqa.zoo import available_predictors

    cards = [cls.card() for cls in available_predictors().values()]
    if as_json:
        print(json.dumps(cards, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "lower better", "range", "scale", "description")
    for c in cards:
        table.add_row(
            c["name"], str(c["lower_better"]), str(tuple(c["score_range"])), c["scale"], c["description"]
        )
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models(args.json)
    if not args.videos:
        raise ConfigError("no video given (rqvqa predict VIDEO... [--model NAME])")
    from tqdm import tqdm

    predictor = _predictor(args)
    rows: list[dict[str, Any]] = []
    bar = tqdm(
        total=len(args.videos),
        desc=f"predict ({predictor.name})",
        unit="video",
        file=sys.stderr,
        disable=len(args.videos) < 2,
    )
    with bar, video_limits(max_pixels=args.max_pixels):
        for path in args.videos:
            row = score_video(predictor, path, debug=args.debug)
            rows.append(row)
            if row["status"] != STATUS_OK:
                message = f"rqvqa: error: {row['error']}"
                if args.debug and "traceback" in row["extra"]:
                    message = f"{row['extra']['traceback'].rstrip()}\n{message}"
                tqdm.write(message, file=sys.stderr)
            bar.update(1)
    _emit(rows, args)
    failed = sum(row["status"] != STATUS_OK for row in rows)
    if failed:
        print(f"rqvqa: {failed} of {len(args.videos)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _emit(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Every input has a row, failed ones included (status "error" and the reason)."""
    if args.json:
        print(dumps_json(rows, indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(r) for r in rows)
    elif rows:
        from rich.console import Console
        from rich.table import Table

        table = Table("video", "model", "score", "per second")
        for r in rows:
            if r["status"] == STATUS_OK:
                per_second = " ".join("-" if s is None else f"{s:.2f}" for s in r["per_second"])
                table.add_row(r["path"], r["model"], f"{r['score']:.3f}", per_second)
            else:
                table.add_row(r["path"], r["model"], "error", r["error"])
        Console().print(table)

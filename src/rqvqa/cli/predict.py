"""`rqvqa predict INPUT... --model NAME`: score videos with a model of the zoo (`rqvqa.api`).

Inputs are files, folders (recursive), globs, manifests (.csv/.parquet) or `-` (paths on stdin); scoring runs
on `rqvqa.pipeline` (`--engine local|sequential|ray`, `--workers`, `--batch-size`).

Output: a table (default), `--json` (a list of result rows, see `rqvqa.results`) or `--csv` (one row per
video) on stdout, in input order; with `--out FILE` (.parquet, .csv, .jsonl) each row is appended to FILE as
soon as its video finishes instead, and `--resume` continues such a file. A progress bar goes to stderr. Every
input gets a row: a video that fails (for any reason) gets `status` "error" and a one-line `error`, is also
reported on stderr, and does not stop the batch; the exit code is 1 if any file failed (stderr says how many).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any

from rqvqa.cli.options import add_max_pixels_option, add_precision_options, wrapping
from rqvqa.errors import ConfigError, printable
from rqvqa.results import CSV_COLUMNS, STATUS_OK, csv_row, dumps_json, row_issues
from rqvqa.video.reader import video_limits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score videos with a quality model (default: the offline lite model)")
    p.add_argument(
        "videos",
        nargs="*",
        metavar="INPUT",
        help="video files, folders (recursive), globs, manifests (.csv/.parquet, video column), - (stdin)",
    )
    p.add_argument("--model", default="lite", help="model name (see --list-models); default: lite")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    fmt.add_argument(
        "--csv", action="store_true", help="print CSV (path, model, score, ...) instead of a table"
    )
    p.add_argument("--weights", default=None, help="weights folder or file (models that need weights)")
    p.add_argument(
        "--device", default=None, help="torch device of a network model (cpu, cuda, cuda:1...; default cpu)"
    )
    p.add_argument(
        "--weights-dir",
        default=None,
        help="folder of the feature sources' checkpoints (else $RQVQA_WEIGHTS_DIR, then the download cache)",
    )
    p.add_argument(
        "--mode",
        choices=("official", "full"),
        default=None,
        help="key-frame sampling: official (the first 8 seconds, as the models were trained; the default) "
        "or full (one key frame per second of the whole video)",
    )
    add_precision_options(p)
    p.add_argument(
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="fast mode for lite-v1/brisque/niqe: score at most N of the one-per-second frames",
    )
    add_max_pixels_option(p)
    p.add_argument(
        "--list-models", action="store_true", help="list the models, and which can run now, and exit"
    )
    add_collection_arguments(p)
    p.set_defaults(func=run)


def add_collection_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a collection run (`rqvqa.pipeline.score_collection`)."""
    from rqvqa.pipeline.engines import ENGINES

    p.add_argument("--out", default=None, metavar="FILE", help="append rows to FILE (.parquet, .csv, .jsonl)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue --out: skip the paths that have an ok row there (same model), retry the failed ones",
    )
    p.add_argument(
        "--engine", choices=ENGINES, default="local", help="scheduler (default local: process pool)"
    )
    p.add_argument("--workers", type=int, default=None, metavar="N", help="CPU workers (default: all cores)")
    p.add_argument("--batch-size", type=int, default=1, metavar="N", help="videos per model forward")
    p.add_argument("--address", default=None, help="Ray cluster (auto, ray://host:port); default: local Ray")
    p.add_argument(
        "--no-diagnosis",
        dest="diagnosis",
        action="store_false",
        help="skip the artifact diagnosis (banding, blocking, blur...) the rows carry",
    )


def require_collection_extras(args: argparse.Namespace) -> None:
    """Refuse in one line, before any input is read or any result written, a collection option whose pip
    extra is not installed: a Parquet result or manifest, the Ray engine."""
    from rqvqa.extras import require

    if args.out is not None and os.path.splitext(args.out)[1].lower() == ".parquet":
        require("parquet", "--out FILE.parquet")
    if any(v.lower().endswith(".parquet") and os.path.isfile(v) for v in args.videos):
        require("parquet", "a .parquet manifest")
    if args.engine == "ray":
        require("ray", "--engine ray")


#: command-line flags -> the model option they set
FLAGS = {
    "weights": "--weights",
    "device": "--device",
    "weights_dir": "--weights-dir",
    "mode": "--mode",
    "dtype": "--dtype",
    "qalign_8bit": "--qalign-8bit",
    "max_frames": "--max-frames",
}


def predictor_from_args(args: argparse.Namespace):
    """The predictor the flags ask for: only the options given are passed, and a flag the model does not take
    is refused (never silently ignored)."""
    from rqvqa.api import create_predictor, model_class
    from rqvqa.registry import accepted_options

    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name, None) is not None}
    if given.get("max_frames") is not None and given["max_frames"] < 1:
        raise ConfigError("--max-frames must be at least 1")
    if given:
        takes = accepted_options(model_class(args.model))  # imports that model only
        # single-network models name these differently: their weights folder is `weights`, Q-Align's int8
        # switch `load_8bit`
        if "weights_dir" in given and "weights_dir" not in takes and "weights" not in given:
            given["weights"] = given.pop("weights_dir")
        if "qalign_8bit" in given and "qalign_8bit" not in takes and "load_8bit" in takes:
            given["load_8bit"] = given.pop("qalign_8bit")
        refused = [FLAGS[name] for name in given if name not in takes and name in FLAGS]
        if refused:
            raise ConfigError(f"model {args.model} does not take {', '.join(refused)}")
    return create_predictor(args.model, **given)


def _list_models(as_json: bool, weights_dir: str | None) -> int:
    from rqvqa.api import list_models

    cards = list_models(weights_dir)  # declared cards: no model module (nor torch) is imported
    if as_json:
        print(json.dumps(cards, indent=2, allow_nan=False))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = wrapping(
        Table("model", "can run", "install", "lower better", "range", "scale", "description"),
        whole=("model", "can run", "install"),
    )
    for c in cards:
        table.add_row(
            c["name"],
            c["status"],
            escape(f"rqvqa[{c['extra']}]") if c["extra"] else "core",
            str(c["lower_better"]),
            str(tuple(c["score_range"])),
            c["scale"],
            c["description"],
        )
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models(args.json, args.weights_dir)
    if not args.videos:
        raise ConfigError("no video given (rqvqa predict INPUT... [--model NAME])")
    from tqdm import tqdm

    from rqvqa.pipeline import score_collection

    require_collection_extras(args)
    predictor = predictor_from_args(args)
    rows: list[dict[str, Any]] = []
    scored = failed = skipped = 0
    bar = tqdm(
        desc=f"predict ({predictor.card.name})",
        unit="video",
        file=sys.stderr,
        total=count_inputs(args.videos),
        disable=len(args.videos) < 2 and not any(os.path.isdir(v) for v in args.videos),
    )

    def skip(path: str) -> None:
        nonlocal skipped
        skipped += 1
        bar.update(1)

    with bar, video_limits(max_pixels=args.max_pixels):
        stream = score_collection(
            predictor,
            args.videos,
            engine=args.engine,
            workers=args.workers,
            batch_size=args.batch_size,
            out=args.out,
            resume=args.resume,
            address=args.address,
            ordered=args.out is None,
            debug=args.debug,
            diagnosis=args.diagnosis,
            on_skip=skip,
        )
        for row in stream:
            if args.out is None:  # with --out the rows live in the file, not in memory
                rows.append(row)
            if row["status"] == STATUS_OK:
                scored += 1
            else:
                failed += 1
                message = f"rqvqa: error: {row['error']}"
                if args.debug and "traceback" in row["extra"]:
                    message = f"{row['extra']['traceback'].rstrip()}\n{message}"
                tqdm.write(message, file=sys.stderr)
            bar.update(1)
    if args.out is None:
        _emit(rows, args)
    else:
        summary = {"out": args.out, "scored": scored, "failed": failed, "skipped": skipped}
        print(dumps_json(summary) if args.json else summary_line(args.out, scored, failed, skipped))
    if failed:
        print(f"rqvqa: {failed} of {scored + failed} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def summary_line(out: str, scored: int, failed: int, skipped: int) -> str:
    """What a run with --out says: every count adds up to the inputs ("10 video(s): 7 scored, 3 failed")."""
    line = f"{scored + failed + skipped} video(s) in {printable(out)}: {scored} scored, {failed} failed"
    return line + (f", {skipped} already scored (--resume)" if skipped else "")


def count_inputs(videos: list[str]) -> int | None:
    """How many videos the inputs name (the progress bar's total, for its ETA); None when one is read from
    standard input (read once, it cannot be counted first)."""
    from rqvqa.pipeline.inputs import unique_inputs

    if "-" in videos:
        return None
    return sum(1 for _ in unique_inputs(videos))


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
        from rich.text import Text

        # cells are plain text (a name like "[/bold]" is not markup), wrapped rather than cut at any width
        table = wrapping(Table("video", "model", "score", "issues", "per second"))
        for r in rows:
            path, model = Text(printable(r["path"])), Text(printable(r["model"]))
            if r["status"] == STATUS_OK:
                per_second = " ".join("-" if s is None else f"{s:.2f}" for s in r["per_second"])
                issues = ", ".join(row_issues(r)) or "-"
                table.add_row(path, model, f"{r['score']:.3f}", issues, per_second)
            else:
                table.add_row(path, model, "error", "", Text(r["error"]))
        console = Console(highlight=False)
        console.print(table)
        for r in rows:
            for note in r.get("notes") or []:
                console.print(Text(f"note: {printable(r['path'])}: {note}"))

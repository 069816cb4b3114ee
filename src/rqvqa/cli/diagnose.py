"""`rqvqa diagnose VIDEO...`: why each video is bad -- banding, blocking, blur, noise, exposure, stutter.

No quality model runs: one decode per video through `rqvqa.diagnosis.Diagnoser`. Output: a table (default;
one row per video: the detected artifacts, then each kind's level) or `--json` (a list of rows: `path`,
`status`, `diagnosis`, `error`; strict JSON). A video that fails gets status "error" and a one-line reason
(also on stderr), the others go on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rqvqa.cli.options import add_max_pixels_option
from rqvqa.errors import ConfigError, printable
from rqvqa.results import STATUS_ERROR, STATUS_OK, dumps_json, one_line
from rqvqa.video.reader import video_limits

#: short column names of the table (it fits 80 columns)
_SHORT = {
    "banding": "band",
    "blocking": "block",
    "blur": "blur",
    "noise": "noise",
    "exposure": "expo",
    "stutter": "stut",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose", help="say why videos are bad: banding, blocking, blur, noise, exposure, stutter"
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="video files")
    p.add_argument("--json", action="store_true", help="print a JSON list (levels per second included)")
    add_max_pixels_option(p)
    p.set_defaults(func=run)


def diagnose_row(path: str, debug: bool = False) -> dict[str, Any]:
    """The row of one video: never raises for that video's failure (it becomes an error row)."""
    from rqvqa.diagnosis import diagnose_file

    try:
        return {"path": path, "status": STATUS_OK, "diagnosis": diagnose_file(path), "error": None}
    except Exception as exc:  # any failure of this video is its row's error, the batch goes on
        if debug:
            raise
        return {"path": path, "status": STATUS_ERROR, "diagnosis": None, "error": one_line(exc, path)}


def run(args: argparse.Namespace) -> int:
    if not args.videos:
        raise ConfigError("no video given (rqvqa diagnose VIDEO...)")
    rows = []
    with video_limits(max_pixels=args.max_pixels):
        for path in args.videos:
            row = diagnose_row(path, getattr(args, "debug", False))
            if row["status"] != STATUS_OK:
                print(f"rqvqa: error: {row['error']}", file=sys.stderr)
            rows.append(row)
    if args.json:
        print(dumps_json(rows, indent=2))
    else:
        _table(rows)
    failed = sum(r["status"] != STATUS_OK for r in rows)
    if failed:
        print(f"rqvqa: {failed} of {len(rows)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


#: how each level is printed in the table
_FORMAT = {
    "banding": "{:.1f}",
    "blocking": "{:.0f}",
    "blur": "{:.2f}",
    "noise": "{:.1f}",
    "exposure": "{:.2f}",
    "stutter": "{:.0f}",
}
#: the video column's width; a longer path keeps its end (the file name)
_PATH_WIDTH = 22


def _short_path(path: str):
    """The path as plain text (never markup), escaped (`printable`), its end kept when long."""
    from rich.text import Text

    path = printable(path)
    return Text(path if len(path) <= _PATH_WIDTH else "..." + path[-(_PATH_WIDTH - 3) :])


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rqvqa.diagnosis import KINDS, detected_labels

    table = Table(box=None, pad_edge=False)
    table.add_column("video", no_wrap=True)
    table.add_column("issues", overflow="fold")
    for kind in KINDS:
        table.add_column(_SHORT[kind], justify="right", no_wrap=True)
    errors = []
    for r in rows:
        if r["status"] == STATUS_OK:
            d = r["diagnosis"]
            cells = []
            for kind in KINDS:
                level = d[kind]["level"]
                text = "-" if level is None else _FORMAT[kind].format(level)
                cells.append(f"[bold]{text}*[/]" if d[kind]["detected"] else text)
            table.add_row(_short_path(r["path"]), ", ".join(detected_labels(d, strong=False)) or "-", *cells)
        else:
            table.add_row(_short_path(r["path"]), "error (below)", *(["-"] * len(KINDS)))
            errors.append(r["error"])
    console = Console(width=80, highlight=False)
    console.print(table)
    console.print("* detected. " + ", ".join(f"{_SHORT[k]}: {k}" for k in KINDS if _SHORT[k] != k) + ".")
    for error in errors:
        console.print(Text(f"error: {error}"), soft_wrap=True)

"""`rqvqa info VIDEO...`: the probe and the sampling plan (key-frame indices, chunk ranges) of each video.

Bad files are reported one line each on stderr and do not stop the others; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from rqvqa.cli.options import add_max_pixels_option
from rqvqa.results import dumps_json, one_line
from rqvqa.video.reader import probe, video_limits
from rqvqa.video.sampling import CHUNK_LENGTH, MODES, plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a video's properties and its sampling plan")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="official",
        help="official: 8 key frames / >= 8 chunks as the released checkpoints; full: every second",
    )
    p.add_argument("--json", action="store_true", help="print JSON (one list of objects) instead of tables")
    add_max_pixels_option(p)
    p.set_defaults(func=run)


def describe(path: str, mode: str) -> dict:
    info = probe(path)
    return {**info.to_dict(), "plan": plan(info, mode).to_dict()}


def run(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.videos:
        try:
            with video_limits(max_pixels=args.max_pixels):
                result = describe(path, args.mode)
        except Exception as exc:  # one bad file, whatever the failure, never stops the others
            if args.debug:
                traceback.print_exc()
            failed += 1
            print(f"rqvqa: error: {one_line(exc, path)}", file=sys.stderr)
            continue
        results.append(result)
        if not args.json:
            _print_table(result)
    if args.json:
        print(dumps_json(results, indent=2))
    return 1 if failed else 0


def _ranges(ranges: list[list[int]]) -> str:
    # "+k": the chunk is padded with k copies of its last frame
    return ", ".join(
        f"{a}-{b - 1}" + (f"+{CHUNK_LENGTH - (b - a)}" if b - a < CHUNK_LENGTH else "") for a, b in ranges
    )


def _print_table(d: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rqvqa.errors import printable

    # the name as text, escaped: never markup ("[/bold]"), never a raw escape sequence
    table = Table(title=Text(printable(d["path"])), show_header=False, title_justify="left")
    table.add_column("property", style="bold")
    table.add_column("value", overflow="fold")
    frame_count = str(d["frame_count"])
    if d["container_frame_count"] not in (None, d["frame_count"]):
        frame_count += f" (header says {d['container_frame_count']})"
    p = d["plan"]
    rows = [
        ("size", f"{d['width']}x{d['height']} (displayed)"),
        ("rotation", f"{d['rotation']}°"),
        ("frame rate", f"{d['fps']:.4g} fps ({d['frame_rate']}), rounded {d['fps_int']}"),
        ("frames", frame_count),
        ("duration", f"{d['duration']:.3f} s"),
        ("codec", f"{d['codec']}, {d['pix_fmt']}, {d['bit_depth']}-bit"),
        (f"key frames ({p['mode']})", ", ".join(map(str, p["keyframe_indices"]))),
        (f"chunks ({len(p['chunk_ranges'])})", _ranges(p["chunk_ranges"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)

"""`rqvqa manifest DATASET LABELS... --root DIR -o manifest.csv`: build a manifest from published labels."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rqvqa.data.adapters import ADAPTERS, build_manifest
from rqvqa.data.manifest import write_manifest
from rqvqa.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "manifest",
        help="build a dataset manifest (video,mos,group[,split]) from a dataset's label files",
        description="Convert a dataset's label file(s) into the rqvqa manifest format. Video paths are "
        "written relative to the manifest's folder when the videos lie under it, otherwise absolute. "
        "See docs/evaluation.md for the accepted label formats.",
    )
    p.add_argument("dataset", choices=sorted(ADAPTERS), help="which dataset the labels belong to")
    p.add_argument(
        "labels", type=Path, nargs="+", help="label file(s); LSVQ accepts several (train/test/1080p)"
    )
    p.add_argument(
        "--root", type=Path, required=True, help="folder the video names in the labels are relative to"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="manifest CSV to write")
    p.add_argument("--ext", help="extension for bare video ids (default: .mp4; YouTube-UGC .mkv)")
    p.add_argument(
        "--check-files", action="store_true", help="fail if a listed video does not exist under --root"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a line of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest = build_manifest(args.dataset, args.labels, args.root, ext=args.ext)
    if args.check_files:
        missing = [manifest.path(k) for k in range(len(manifest)) if not manifest.path(k).is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} of {len(manifest)} videos not found, e.g. {missing[0]}", args.root
            )
    write_manifest(manifest, args.output)
    splits: dict[str, int] = {}
    for row in manifest:
        if row.split:
            splits[row.split] = splits.get(row.split, 0) + 1
    summary = {
        "output": str(args.output),
        "dataset": args.dataset,
        "videos": len(manifest),
        "groups": len(set(manifest.groups)),
        "splits": splits,
    }
    if args.json:
        print(json.dumps(summary, indent=1, allow_nan=False))
    else:
        split_text = ", ".join(f"{k} {v}" for k, v in splits.items()) or "none"
        print(
            f"wrote {summary['videos']} videos in {summary['groups']} groups (official splits: {split_text}) "
            f"to {args.output}"
        )
    return 0

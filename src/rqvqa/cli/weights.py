"""`rqvqa weights list | download NAME... | verify [NAME...] | path NAME`: checkpoint registry and cache."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rqvqa import weights
from rqvqa.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--weights-dir",
        help=f"folder of hand-fetched checkpoints (searched before ${weights.ENV_WEIGHTS_DIR}, the cache)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("weights", help="list, download, verify and locate checkpoints")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("list", parents=[common], help="every known checkpoint and where it is")
    a.set_defaults(func=run_list)

    a = actions.add_parser("download", parents=[common], help="download into the cache (resumes .part files)")
    a.add_argument("names", nargs="+", metavar="NAME", help="entries or groups (qalign, rqvqa-kvq)")
    a.add_argument("--restart", action="store_true", help="discard a partial download instead of resuming it")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.set_defaults(func=run_download)

    a = actions.add_parser(
        "verify", parents=[common], help="check size and sha256 (default: every file found)"
    )
    a.add_argument("names", nargs="*", metavar="NAME")
    a.add_argument(
        "--repin", action="store_true", help="forget the first-use sha256 of NAME and pin the present file"
    )
    a.set_defaults(func=run_verify)

    a = actions.add_parser(
        "path",
        parents=[common],
        help="print the path of a checkpoint, or a group's folder (error if missing)",
    )
    a.add_argument("name", metavar="NAME")
    a.set_defaults(func=run_path)


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for k, column in enumerate(columns):  # names stay whole (they are what users type); the rest folds
        table.add_column(column, overflow="fold", no_wrap=k == 0)
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout).print(table)


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=1, default=str, allow_nan=False))


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for entry in weights.list_weights():
        found = weights.find(entry.name, args.weights_dir)
        rows.append({**asdict(entry), "path": found, "cache_path": weights.cache_dir() / entry.relpath})
    if args.json:
        _print_json(rows)
        return 0
    _print_table(
        f"checkpoints (cache: {weights.cache_dir()}; --json for URLs, licences, users)",
        ["name", "file", "size", "licence", "found at"],
        [
            [r["name"], r["filename"], r["size_hint"], r["licence"].split(" (")[0], str(r["path"] or "-")]
            for r in rows
        ],
    )
    return 0


def _names(given: list[str]) -> list[str]:
    return list(dict.fromkeys(name for group in given for name in weights.expand(group)))


def run_download(args: argparse.Namespace) -> int:
    done = {}
    for name in _names(args.names):
        if args.restart:
            done[name] = weights.download(name, progress=not args.no_progress, restart=True)
        else:
            done[name] = weights.resolve(name, args.weights_dir, download=True, progress=not args.no_progress)
    groups = {g: weights.group_folder(g, args.weights_dir) for g in args.names if g in weights.groups()}
    if args.json:
        _print_json({name: str(path) for name, path in {**done, **groups}.items()})
    else:
        for name, path in {**done, **groups}.items():
            print(f"{name}: {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    if args.repin and not args.names:
        raise ConfigError("--repin needs the NAME of the file to pin again")
    names = _names(args.names) or [
        e.name for e in weights.list_weights() if weights.find(e.name, args.weights_dir)
    ]
    results = [weights.verify(name, args.weights_dir, repin=args.repin) for name in names]
    # a file the user named explicitly must exist; in the default sweep only present files are checked
    failed = any(r.failed or r.status == "missing" for r in results)
    if args.json:
        _print_json([asdict(r) for r in results])
    elif not results:
        print("no checkpoint found (nothing to verify)")
    else:
        _print_table(
            f"verification (first-use pins: {weights.lock_file()})",
            ["name", "status", "path", "sha256", "detail"],
            [[r.name, r.status, str(r.path or "-"), r.sha256 or "-", r.detail] for r in results],
        )
    return 1 if failed else 0


def run_path(args: argparse.Namespace) -> int:
    """A group's path is the folder holding all of its files (what --weights / --weights-dir take)."""
    paths = [weights.resolve(name, args.weights_dir) for name in weights.expand(args.name)]
    path = (
        paths[0] if args.name not in weights.groups() else weights.group_folder(args.name, args.weights_dir)
    )
    if path is None:
        raise ConfigError(f"the files of {args.name} are spread over several folders: put them in one")
    if args.json:
        _print_json({"name": args.name, "path": str(path)})
    else:
        print(path)
    return 0

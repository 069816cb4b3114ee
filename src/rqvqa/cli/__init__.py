"""The `rqvqa` command. Each sub-command lives in its own module under `rqvqa.cli` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int` as the handler."""

from __future__ import annotations

import argparse
import importlib
import sys

from rqvqa import __version__
from rqvqa.errors import RqvqaError

# Order is the order shown in `rqvqa --help`.
COMMAND_MODULES = [
    "rqvqa.cli.info",
    "rqvqa.cli.evaluate",
    "rqvqa.cli.manifest",
    "rqvqa.cli.synth",
    "rqvqa.cli.weights",
    "rqvqa.cli.convert",
    "rqvqa.cli.extract",
    "rqvqa.cli.train",
    "rqvqa.cli.predict",
    "rqvqa.cli.benchmark_features",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rqvqa", description="Blind video quality assessment with rich quality-aware features (RQ-VQA)."
    )
    parser.add_argument("--version", action="version", version=f"rqvqa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RqvqaError as exc:
        if args.debug:
            raise
        print(f"rqvqa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rqvqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `rqvqa` command. Each sub-command lives in its own module under `rqvqa.cli` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int` as the handler."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rqvqa.errors import ConfigError, RqvqaError
from rqvqa.extras import explain, require
from rqvqa.registry import MODELS_EXTRA
from rqvqa.results import one_line
from rqvqa.version import __version__

# name -> (module, one-line help). Order is the order shown in `rqvqa --help`. Only the module of the command
# being run is imported (several pull in torch, timm and open_clip, which take seconds to import); the others
# appear in the overview through their one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("rqvqa.cli.predict", "score videos with a quality model (default: the offline lite model)"),
    "info": ("rqvqa.cli.info", "show a video's properties and its sampling plan"),
    "evaluate": ("rqvqa.cli.evaluate", "SRCC/PLCC/KRCC/RMSE and the NTIRE 2024 score of predictions"),
    "manifest": ("rqvqa.cli.manifest", "build a dataset manifest from a dataset's label files"),
    "extract": (
        "rqvqa.cli.extract",
        "extract frozen features of a manifest's videos into a feature store [extra: models for networks]",
    ),
    "train": ("rqvqa.cli.train", "train RQ-VQA (or a preset / ablation) on seeded group-aware splits"),
    "weights": ("rqvqa.cli.weights", "list, download, verify and locate checkpoints"),
    "convert": ("rqvqa.cli.convert", "convert an official RQ-VQA / LSVQ checkpoint to safetensors"),
    "benchmark-features": (
        "rqvqa.cli.benchmark_features",
        "UGC-VQA benchmark protocol (SVR, random splits) for a feature matrix",
    ),
    "features": ("rqvqa.cli.features", "VIDEVAL / VIDEVAL_light / BRISQUE feature rows of videos, no MATLAB"),
    "synth": ("rqvqa.cli.synth", "generate a synthetic test video (no download needed)"),
    "diagnose": ("rqvqa.cli.diagnose", "why videos are bad: banding, blocking, blur, noise, exposure..."),
    "report": ("rqvqa.cli.report", "an HTML report of predictions: plots, worst seconds, accuracy"),
    "serve": ("rqvqa.cli.serve", "an HTTP scoring service with a page (POST /v1/score, GET /)"),
}

#: commands that need a pip extra beyond the offline core (`rqvqa.extras`): refused in one line without it
NEEDS: dict[str, str] = {
    "train": MODELS_EXTRA,
    "convert": MODELS_EXTRA,
    "benchmark-features": "benchmark",
    "report": "report",
    "serve": "serve",
}


def _command_in(argv: list[str]) -> str | None:
    """The sub-command named on the command line (global options all start with '-')."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove `--debug` wherever it stands before a `--` separator (it is accepted after the sub-command
    too: `rqvqa predict a.mp4 --debug`), and say whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"]
    return kept + argv[end:], len(kept) != end


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with `command` fully registered (None: all of them) and the rest as one-line stubs."""
    parser = argparse.ArgumentParser(
        prog="rqvqa", description="Blind video quality assessment with rich quality-aware features (RQ-VQA)."
    )
    parser.add_argument("--version", action="version", version=f"rqvqa {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show full tracebacks on errors (accepted anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).register(sub)
        else:
            needs = f" [extra: {NEEDS[name]}]" if name in NEEDS else ""
            sub.add_parser(name, help=summary + needs)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    argv, debug = _pop_debug(argv)
    command = _command_in(argv)
    if command in NEEDS:
        try:
            require(NEEDS[command], f"rqvqa {command}")
        except ConfigError as exc:
            print(f"rqvqa: error: {exc}", file=sys.stderr)
            return 1
    parser = build_parser(command or "")
    args = parser.parse_args(argv)
    args.debug = debug
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rqvqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into a reader that stopped early (`| head`): not an error of ours; silence the
        # interpreter's own flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the command line never shows a traceback unless --debug
        if debug:
            raise
        # a module of a pip extra that is not installed, met on the way, names the extra
        missing = explain(exc, f"rqvqa {command}") if isinstance(exc, ImportError) else None
        hint = "" if isinstance(exc, RqvqaError) else " (rerun with --debug for the traceback)"
        print(f"rqvqa: error: {missing or one_line(exc) + hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

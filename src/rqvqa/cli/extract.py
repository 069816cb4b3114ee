"""`rqvqa extract MANIFEST --sources a,b --store DIR`: fill the feature store and the key-frame cache.

The work is `rqvqa.pipeline.extract` (one decode per video in `--workers` processes, the sources where the
networks live; present entries skipped, so an interrupted run resumes where it stopped). Any failure while
handling one video (an unreadable file, a source's torch RuntimeError, out of memory) is reported as that
video's `failed` entry and the batch goes on; the exit status is 1 when any video failed.

`--sources` is required: without it the command would only cache key frames, which is rarely what a user
means, so that has its own flag (`--keyframes-only`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.cli.options import add_max_pixels_option, add_precision_options
from rqvqa.data.manifest import read_manifest
from rqvqa.errors import ConfigError
from rqvqa.extras import require
from rqvqa.pipeline.engines import ENGINES
from rqvqa.pipeline.extract import ExtractReport, extract_manifest
from rqvqa.registry import REGISTRY
from rqvqa.results import dumps_json
from rqvqa.source import build_sources
from rqvqa.store import FeatureStore
from rqvqa.video.reader import video_limits
from rqvqa.video.sampling import MODES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract frozen features and cache key frames into a feature store",
        description="Decode every video of MANIFEST once and store the features of each requested source "
        "(keyed by source, config hash and video id) plus the base network's key frames (PNG, short side "
        "384). Present entries are skipped (resumable). Bad videos are reported and skipped.",
    )
    p.add_argument("manifest", type=Path, help="manifest CSV (video,mos,group[,split])")
    p.add_argument(
        "--sources", default="", help="comma-separated feature sources, e.g. stats,liqe (required)"
    )
    p.add_argument(
        "--keyframes-only", action="store_true", help="no feature source: only fill the key-frame cache"
    )
    p.add_argument("--store", type=Path, required=True, help="feature store folder")
    p.add_argument("--mode", choices=MODES, default="official", help="key-frame sampling (default official)")
    p.add_argument("--device", default="cpu", help="torch device for network sources (cpu, cuda, cuda:1)")
    p.add_argument("--weights-dir", type=Path, help="folder of pre-trained weights for the sources")
    p.add_argument("--seed", type=int, default=0, help="seed of random sampling (FAST-VQA fragments)")
    add_precision_options(p)
    p.add_argument("--no-keyframes", action="store_true", help="do not write the key-frame cache")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_max_pixels_option(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="scheduler: local (decoding in --workers processes, default), sequential, ray",
    )
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="decoding workers (default: all cores)"
    )
    p.add_argument("--address", default=None, help="Ray cluster for --engine ray (auto, ray://host:port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    if args.keyframes_only and (names or args.no_keyframes):
        raise ConfigError("--keyframes-only takes neither --sources nor --no-keyframes")
    if not names and not args.keyframes_only:
        raise ConfigError(
            f"no --sources given: name the feature sources to extract (available: "
            f"{', '.join(REGISTRY.source_names())}), or --keyframes-only to fill only the key-frame cache"
        )
    if args.engine == "ray":
        require("ray", "--engine ray")
    manifest = read_manifest(args.manifest)
    sources = build_sources(names, args.device, args.weights_dir, args.dtype, bool(args.qalign_8bit))
    with video_limits(max_pixels=args.max_pixels):
        report = extract_manifest(
            manifest,
            sources,
            FeatureStore(args.store),
            mode=args.mode,
            seed=args.seed,
            keyframes=not args.no_keyframes,
            progress=not args.no_progress,
            debug=args.debug,
            engine=args.engine,
            workers=args.workers,
            address=args.address,
        )
    if args.json:
        print(dumps_json(report.to_dict(), indent=1))
    else:
        _print_table(report, args.store)
    return 1 if report.failed else 0


def _print_table(report: ExtractReport, store: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"feature store {store}")
    table.add_column("source")
    table.add_column("config hash")
    for name, digest in report.sources.items():
        table.add_row(name, digest)
    if report.sources:
        console.print(table)
    console.print(f"extracted {report.done}, already present {report.skipped}, failed {len(report.failed)}")
    for failure in report.failed:
        console.print(f"[red]failed[/red] {failure['error']}", highlight=False)

"""`rqvqa extract MANIFEST --sources a,b --store DIR`: fill the feature store and the key-frame cache.

Each video is decoded once (`sample_video`) for the union of what its still-missing entries need; entries
already in the store are skipped, so an interrupted run resumes where it stopped. Any failure while handling
one video (an unreadable file, a source's torch RuntimeError, out of memory) is reported as that video's
`failed` entry and the batch goes on; the exit status is 1 when any video failed.

`--sources` is required: without it the command would only cache key frames, which is rarely what a user
means, so that has its own flag (`--keyframes-only`).
"""

from __future__ import annotations

import argparse
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rqvqa.data.manifest import Manifest, read_manifest
from rqvqa.errors import ConfigError
from rqvqa.pipeline.stages import build_sources, check_shape, sample_for
from rqvqa.results import dumps_json, one_line
from rqvqa.sources.base import FEATURE_SOURCES, FeatureSource
from rqvqa.store import FeatureStore, keyframe_tag, video_id
from rqvqa.video.reader import parse_pixels, video_limits
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
    p.add_argument("--no-keyframes", action="store_true", help="do not write the key-frame cache")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-pixels",
        type=parse_pixels,
        default=None,
        metavar="N|WxH",
        help="refuse videos whose frames have more pixels (default 7680x4320, 8K UHD)",
    )
    p.set_defaults(func=run)


@dataclass
class ExtractReport:
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # name -> config hash

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed, "sources": self.sources}


def extract_manifest(
    manifest: Manifest,
    sources: list[FeatureSource],
    store: FeatureStore,
    mode: str = "official",
    seed: int = 0,
    keyframes: bool = True,
    progress: bool = True,
    debug: bool = False,
) -> ExtractReport:
    """Fill `store` for every video of `manifest`; see the module docstring. With `debug`, a failed video's
    traceback goes to stderr."""
    from tqdm import tqdm

    report = ExtractReport()
    hashes = {}
    for source in sources:
        # the fragment seed only matters to sources that read fragments
        sampling = {"mode": mode, **({"seed": seed} if "fragments" in source.needs else {})}
        hashes[source.name] = source.config_hash(sampling)
        store.describe(
            source.name,
            hashes[source.name],
            {
                "name": source.name,
                "version": source.version,
                "dim": source.dim,
                "granularity": str(source.granularity),
                "config": source.config(),
                "mode": mode,
            },
        )
    report.sources = dict(hashes)
    tag = keyframe_tag(mode)
    for index in tqdm(range(len(manifest)), desc="extract", unit="video", disable=not progress):
        path = manifest.path(index)
        vid = video_id(manifest[index].video, manifest.base_dir)
        todo = [s for s in sources if not store.has(s.name, hashes[s.name], vid)]
        want_frames = keyframes and not store.has_keyframes(vid, tag)
        if not todo and not want_frames:
            report.skipped += 1
            continue
        needs = set().union(*(s.needs for s in todo)) | ({"keyframes_384"} if want_frames else set())
        try:
            sample = sample_for(path, needs, mode, seed)
            # compute every source before writing, so a source failing on this video leaves no half entry set
            arrays = {s.name: check_shape(s, np.asarray(s.extract(sample)), str(path)) for s in todo}
        except Exception as exc:  # isolation: whatever fails, it is this video's failure only
            if debug:
                traceback.print_exc()
            report.failed.append({"video": manifest[index].video, "error": one_line(exc, path)})
            continue
        for name, array in arrays.items():
            store.save(name, hashes[name], vid, array)
        if want_frames:
            store.save_keyframes(vid, sample.keyframes_384, tag)
        report.done += 1
    return report


def run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    if args.keyframes_only and (names or args.no_keyframes):
        raise ConfigError("--keyframes-only takes neither --sources nor --no-keyframes")
    if not names and not args.keyframes_only:
        raise ConfigError(
            f"no --sources given: name the feature sources to extract (available: "
            f"{', '.join(FEATURE_SOURCES.names())}), or --keyframes-only to fill only the key-frame cache"
        )
    manifest = read_manifest(args.manifest)
    sources = build_sources(names, args.device, args.weights_dir)
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

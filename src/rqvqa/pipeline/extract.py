"""Filling the feature store (`rqvqa extract`) with the collection engines.

Each video is decoded once (a `Sampling` product, the decode stage, in the engine's workers) for what the
requested sources and the key-frame cache still miss for it; the model stage (where the networks were set up)
computes those entries and writes them to the store (atomic writes: an entry is complete or absent). Entries
already in the store are skipped before any decode, so an interrupted run resumes where it stopped. Any
failure while handling one video is that video's `failed` entry and the batch goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rqvqa.data.manifest import Manifest
from rqvqa.pipeline.engines import run_engine
from rqvqa.pipeline.stages import Failure, Job
from rqvqa.predictor import Resources
from rqvqa.source import FeatureSource, check_shape
from rqvqa.store import FeatureStore, keyframe_tag, video_id
from rqvqa.video.decode import Decoded, Decoder
from rqvqa.video.sampling import Sampling


@dataclass
class ExtractReport:
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # name -> config hash
    #: temporary files of killed runs removed from the store
    cleaned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "sources": self.sources,
            "cleaned": self.cleaned,
        }


@dataclass(frozen=True)
class _Decode:
    """The decode stage of `extract`: the samplers one video still needs (a job's `needs`)."""

    mode: str
    seed: int

    def __call__(self, path: str, needs: frozenset[str]) -> Decoded:
        product = Sampling(mode=self.mode, seed=self.seed, **dict.fromkeys(needs, True))
        return Decoder((("sample", product),))(path)


class Extraction:
    """The stages of `extract` for one manifest (see the module docstring)."""

    def __init__(
        self,
        manifest: Manifest,
        sources: list[FeatureSource],
        store: FeatureStore,
        mode: str,
        seed: int,
        keyframes: bool,
    ):
        self.sources, self.store, self.mode, self.seed, self.keyframes = sources, store, mode, seed, keyframes
        self.tag = keyframe_tag(mode)
        self.hashes = {}
        for source in sources:
            # the fragment seed only matters to sources that read fragments
            sampling = {"mode": mode, **({"seed": seed} if "fragments" in source.needs else {})}
            self.hashes[source.name] = source.config_hash(sampling)
        #: file path -> store id (the manifest's relative name)
        self.ids = {
            os.fspath(manifest.path(i)): video_id(row.video, manifest.base_dir)
            for i, row in enumerate(manifest)
        }

    def describe(self) -> None:
        """Record in the store what produced each source's entries."""
        for source in self.sources:
            self.store.describe(
                source.name,
                self.hashes[source.name],
                {
                    "name": source.name,
                    "version": source.version,
                    "dim": source.dim,
                    "granularity": str(source.granularity),
                    "config": source.config(),
                    "mode": self.mode,
                },
            )

    def missing(self, path: str) -> tuple[list[FeatureSource], bool]:
        """The sources without an entry for this video, and whether its key frames are missing."""
        vid = self.ids[path]
        todo = [s for s in self.sources if not self.store.has(s.name, self.hashes[s.name], vid)]
        return todo, self.keyframes and not self.store.has_keyframes(vid, self.tag)

    def decoder(self) -> _Decode:
        return _Decode(self.mode, self.seed)

    def setup(self) -> None:
        for source in self.sources:
            source.setup()

    def resources(self) -> Resources:
        return Resources(networks=True)

    def _store(self, decoded: Decoded) -> str:
        sample = decoded["sample"]
        path = str(sample.info.path)
        todo, want_frames = self.missing(path)
        # compute every source before writing, so a source failing on this video leaves no half entry set
        arrays = {s.name: check_shape(s, np.asarray(s.extract(sample)), path) for s in todo}
        vid = self.ids[path]
        for name, array in arrays.items():
            self.store.save(name, self.hashes[name], vid, array)
        if want_frames:
            self.store.save_keyframes(vid, sample.keyframes_384, self.tag)
        return vid

    def score(self, batch: list[Decoded]) -> list[str]:
        return [self._store(d) for d in batch]


def extract_manifest(
    manifest: Manifest,
    sources: list[FeatureSource],
    store: FeatureStore,
    mode: str = "official",
    seed: int = 0,
    keyframes: bool = True,
    progress: bool = True,
    debug: bool = False,
    engine: str = "sequential",
    workers: int | None = None,
    address: str | None = None,
) -> ExtractReport:
    """Fill `store` for every video of `manifest` (see the module docstring). `engine`: "sequential",
    "local" (decoding in `workers` processes) or "ray" (at `address`; the store must then be on a filesystem
    the model actors see). With `debug`, a failed video's traceback goes to stderr."""
    import sys

    from tqdm import tqdm

    work = Extraction(manifest, sources, store, mode, seed, keyframes)
    work.describe()
    report = ExtractReport(sources=dict(work.hashes), cleaned=store.clean_temporary())
    names = {os.fspath(manifest.path(i)): row.video for i, row in enumerate(manifest)}
    bar = tqdm(total=len(manifest), desc="extract", unit="video", disable=not progress)

    def jobs():
        index = 0
        for path in names:
            todo, want_frames = work.missing(path)
            if not todo and not want_frames:
                report.skipped += 1
                bar.update(1)
                continue
            needs = set().union(*(s.needs for s in todo)) | ({"keyframes_384"} if want_frames else set())
            # decode only what is missing; the store keys videos by name, no content key needed
            yield Job(index, path, options={"needs": frozenset(needs)}, keyed=False)
            index += 1

    with bar:
        for job, outcome, _, _ in run_engine(work, jobs(), engine, workers, address=address):
            if isinstance(outcome, Failure):
                if debug and outcome.traceback:
                    print(outcome.traceback, file=sys.stderr)
                report.failed.append({"video": names[job.path], "error": outcome.reason})
            else:
                report.done += 1
            bar.update(1)
    position = {video: k for k, video in enumerate(names.values())}
    report.failed.sort(key=lambda f: position[f["video"]])  # manifest order, whatever the engine
    return report

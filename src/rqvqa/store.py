"""On-disk feature store and key-frame cache.

Layout under the store root::

    features/<source>/<config hash>/source.json         what produced the entries (name, version, config...)
    features/<source>/<config hash>/<video id>.npy      one float32 array per video (shapes: sources.base)
    keyframes/short384-<mode>/<video id>/000.png ...    base-network key frames, short side 384, lossless

Every entry is written to a temporary name in the same folder and moved into place with `os.replace`, so
an entry is either absent or complete: a killed run loses nothing it finished, and a rerun skips what is
present (`has`). Training reads the arrays and PNGs back without decoding any video.

Video ids come from `video_id`: the video's path relative to the manifest's root, in POSIX form, without
its extension (`train/0001.mp4` -> `train/0001`, the official key-frame folder name). Characters outside
``[A-Za-z0-9._-]`` and paths outside the root are made safe and suffixed with a hash of the original path,
so two different videos never share an id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from rqvqa.errors import InputError
from rqvqa.files import atomic_folder, atomic_write, atomic_write_bytes

_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]")
KEYFRAME_TAG = "short384-official"


def video_id(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """Stable store id of a video: its path relative to `root` (the manifest's folder), extension dropped.

    A path outside `root` (or an absolute path without root) becomes its file stem plus a hash of the
    resolved path; unsafe characters become "_" plus a hash, so distinct paths give distinct ids.
    """
    original = Path(path)
    rel: PurePosixPath | None = None
    if root is not None:
        full = original if original.is_absolute() else Path(root) / original
        try:
            rel = PurePosixPath(
                Path(os.path.normpath(full)).relative_to(os.path.normpath(Path(root))).as_posix()
            )
        except ValueError:
            rel = None
    elif not original.is_absolute():
        normal = PurePosixPath(os.path.normpath(original).replace(os.sep, "/"))
        if ".." not in normal.parts:
            rel = normal
    if rel is None or not rel.parts:
        digest = hashlib.sha1(str(Path(os.path.abspath(original))).encode()).hexdigest()[:8]
        return f"{_safe(original.stem)}-{digest}"
    parts = list(rel.parts)
    parts[-1] = PurePosixPath(parts[-1]).stem
    safe_parts = [_safe(p) for p in parts]
    ident = "/".join(safe_parts)
    if safe_parts != parts or any(p in ("", ".", "..") for p in safe_parts):
        ident = ident.replace("..", "__") + "-" + hashlib.sha1("/".join(parts).encode()).hexdigest()[:8]
    return ident


def _safe(part: str) -> str:
    return _SAFE_PART.sub("_", part)


def keyframe_tag(mode: str = "official") -> str:
    """Key-frame cache folder of a sampling mode (official: 8 padded rows; full: every second)."""
    return f"short384-{_safe(mode)}"


def _save_npy(path: Path, data: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, data, allow_pickle=False)


class FeatureStore:
    """Features keyed by (source name, config hash, video id), plus the base network's key-frame cache."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def clean_temporary(self, older_than_s: float = 3600.0) -> int:
        """Remove the hidden temporary files and folders (``.<name>.<random>...tmp``) left by runs killed
        while writing; younger ones may belong to a run still writing and are kept. Returns the count."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in sorted(self.root.rglob(".*.tmp"), key=lambda p: len(p.parts), reverse=True):
            try:
                if path.lstat().st_mtime > cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
            except FileNotFoundError:  # a concurrent cleaner or writer got there first
                continue
        return removed

    # ---- features -------------------------------------------------------------------------------------
    def _folder(self, source: str, config_hash: str) -> Path:
        if not source or _safe(source) != source or not config_hash or _safe(config_hash) != config_hash:
            raise InputError(f"invalid store key ({source!r}, {config_hash!r})", self.root)
        return self.root / "features" / source / config_hash

    def path(self, source: str, config_hash: str, video: str) -> Path:
        return self._folder(source, config_hash) / f"{video}.npy"

    def has(self, source: str, config_hash: str, video: str) -> bool:
        return self.path(source, config_hash, video).is_file()

    def describe(self, source: str, config_hash: str, info: dict[str, Any]) -> None:
        """Record what produced a (source, hash) folder (written once; a mismatch means a hash collision)."""
        target = self._folder(source, config_hash) / "source.json"
        blob = json.dumps(info, sort_keys=True, indent=1, allow_nan=False).encode()
        if target.is_file():
            if json.loads(target.read_text()) != json.loads(blob):
                raise InputError(
                    f"store already holds a different source under {source}/{config_hash}", target
                )
            return
        atomic_write_bytes(target, blob)

    def save(self, source: str, config_hash: str, video: str, array: np.ndarray) -> Path:
        target = self.path(source, config_hash, video)
        data = np.ascontiguousarray(array, dtype=np.float32)
        atomic_write(target, lambda tmp: _save_npy(tmp, data))
        return target

    def load(self, source: str, config_hash: str, video: str) -> np.ndarray:
        target = self.path(source, config_hash, video)
        if not target.is_file():
            raise InputError(
                f"no stored {source} features (hash {config_hash}) for video {video!r}", self.root
            )
        try:
            return np.load(target, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"unreadable feature file ({exc})", target) from exc

    def load_many(self, source: str, config_hash: str, videos: Iterable[str]) -> list[np.ndarray]:
        """Arrays of several videos, in order (per-frame sources may have different row counts)."""
        return [self.load(source, config_hash, v) for v in videos]

    def missing(self, source: str, config_hash: str, videos: Iterable[str]) -> list[str]:
        return [v for v in videos if not self.has(source, config_hash, v)]

    def hashes(self, source: str) -> list[str]:
        """Config hashes stored for a source (to find the entries when the hash is not known)."""
        folder = self.root / "features" / source
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    # ---- key frames -----------------------------------------------------------------------------------
    def keyframe_dir(self, video: str, tag: str = KEYFRAME_TAG) -> Path:
        return self.root / "keyframes" / tag / video

    def has_keyframes(self, video: str, tag: str = KEYFRAME_TAG) -> bool:
        return self.keyframe_dir(video, tag).is_dir()

    def save_keyframes(self, video: str, frames: Sequence[np.ndarray], tag: str = KEYFRAME_TAG) -> Path:
        """Write RGB uint8 frames as 000.png, 001.png ... into a temporary folder, then move it into place."""
        from PIL import Image

        if not frames:
            raise InputError(f"no key frames to cache for video {video!r}", self.root)
        target = self.keyframe_dir(video, tag)

        def fill(folder: Path) -> None:
            for i, frame in enumerate(frames):
                Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB").save(
                    folder / f"{i:03d}.png", compress_level=1
                )

        # a concurrent writer that finished first keeps its complete copy
        atomic_folder(target, fill)
        return target

    def keyframe_paths(self, video: str, tag: str = KEYFRAME_TAG) -> list[Path]:
        """The cached frames in second order: 000.png ... 999.png, then 1000.png ... (full mode)."""
        folder = self.keyframe_dir(video, tag)
        numbered = [p for p in folder.glob("*.png") if p.stem.isdigit()] if folder.is_dir() else []
        paths = sorted(numbered, key=lambda p: int(p.stem))
        if not paths:
            raise InputError(f"no cached key frames for video {video!r}", folder)
        return paths

    def load_keyframes(self, video: str, tag: str = KEYFRAME_TAG) -> list[np.ndarray]:
        from PIL import Image

        frames = []
        for p in self.keyframe_paths(video, tag):
            with Image.open(p) as image:
                frames.append(np.asarray(image.convert("RGB")))
        return frames

"""The dataset manifest: one CSV row per video with its MOS, group (source or scene id) and optional split.

Format (UTF-8 CSV, header required, columns in any order)::

    video,mos,group[,split]
    train/0001.mp4,3.361111111,train/0001,

``video`` is a path, absolute or relative to the manifest's own folder; ``group`` ties videos that must never
be separated by a split (processed versions of one source, one scene); ``split`` names an official fold
(``train``, ``val``, ``test``, ...) and may be empty.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rqvqa.data._csv import header_index, parse_float, read_rows
from rqvqa.errors import InputError

REQUIRED_COLUMNS = ("video", "mos", "group")
OPTIONAL_COLUMNS = ("split",)


@dataclass(frozen=True)
class ManifestRow:
    video: str  # path as written: relative to the manifest's base_dir, or absolute
    mos: float
    group: str
    split: str | None = None


@dataclass(frozen=True)
class Manifest:
    """An ordered, validated list of rows; ``base_dir`` is where relative video paths start."""

    rows: tuple[ManifestRow, ...]
    base_dir: Path = field(default_factory=Path)
    source: Path | None = None  # the file it was read from, for error messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "base_dir", Path(self.base_dir))
        if not self.rows:
            raise InputError("manifest has no rows", self.source)
        seen: set[str] = set()
        for k, row in enumerate(self.rows):
            if not row.video or not row.group:
                raise InputError(f"row {k}: empty video or group", self.source)
            if not math.isfinite(row.mos):
                raise InputError(f"row {k}: {row.video} has a non-finite MOS", self.source)
            if row.video in seen:
                raise InputError(f"{row.video} is listed twice", self.source)
            seen.add(row.video)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> ManifestRow:
        return self.rows[index]

    @property
    def videos(self) -> list[str]:
        return [r.video for r in self.rows]

    @property
    def mos(self) -> np.ndarray:
        return np.array([r.mos for r in self.rows], dtype=np.float64)

    @property
    def groups(self) -> list[str]:
        return [r.group for r in self.rows]

    def path(self, index: int) -> Path:
        """The video file of row ``index``, relative paths resolved against ``base_dir``."""
        return self.base_dir / self.rows[index].video

    def subset(self, indices: Iterable[int]) -> Manifest:
        """A manifest of the given rows, in the given order."""
        return Manifest(tuple(self.rows[i] for i in indices), self.base_dir, self.source)


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest CSV; every problem raises InputError naming the file and the line."""
    path = Path(path)
    rows = read_rows(path)
    (header_line, header), body = rows[0], rows[1:]
    columns = header_index(header)
    unknown = [h for h in header if h.lower() not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing or unknown:
        problem = f"missing {', '.join(missing)}" if missing else f"unknown column {', '.join(unknown)}"
        raise InputError(
            f"line {header_line}: bad header ({problem}); expected video,mos,group[,split]", path
        )
    split_col = columns.get("split")
    first_line: dict[str, int] = {}
    out = []
    for line, fields in body:
        if len(fields) != len(header):
            raise InputError(f"line {line}: {len(fields)} fields, expected {len(header)}", path)
        video, group = fields[columns["video"]], fields[columns["group"]]
        if not video:
            raise InputError(f"line {line}: empty video path", path)
        if not group:
            raise InputError(f"line {line}: empty group", path)
        if video in first_line:
            raise InputError(f"line {line}: {video} repeats line {first_line[video]}", path)
        first_line[video] = line
        mos = parse_float(fields[columns["mos"]], path, line, "mos")
        split = (fields[split_col] or None) if split_col is not None else None
        out.append(ManifestRow(video, mos, group, split))
    if not out:
        raise InputError("no rows after the header", path)
    return Manifest(tuple(out), base_dir=path.parent, source=path)


def _written_path(video: Path, out_dir: Path) -> str:
    # Inside the manifest's folder: store relative (the folder can move); elsewhere: absolute.
    absolute = Path(os.path.abspath(video))
    try:
        return absolute.relative_to(out_dir).as_posix()
    except ValueError:
        return str(absolute)


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    """Write ``manifest`` to ``path``; video paths under the manifest's folder are written relative to it."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected a manifest file name", path)
    out_dir = Path(os.path.abspath(path.parent))
    with_split = any(r.split for r in manifest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(REQUIRED_COLUMNS + (OPTIONAL_COLUMNS if with_split else ()))
            for k, row in enumerate(manifest):
                # repr() is the shortest string that reads back to the same float.
                fields = [_written_path(manifest.path(k), out_dir), repr(float(row.mos)), row.group]
                writer.writerow(fields + ([row.split or ""] if with_split else []))
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror})", path) from None
    return path

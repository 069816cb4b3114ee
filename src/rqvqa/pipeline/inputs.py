"""What a collection run scores: files, folders, globs, manifests and a list on stdin, as one lazy stream.

`iter_inputs(specs)` yields one path per video, in a stable order, without materialising the collection:

- `-`: one path per non-empty line of standard input (lines starting with `#` are comments);
- a folder: every file below it (recursively, sorted) whose extension is a video's (`VIDEO_EXTENSIONS`,
  case-insensitive); a folder without any is yielded itself, so it gets an error row (never silently nothing);
- a `.csv` or `.parquet` file: a manifest with a `video` column (as `rqvqa manifest` writes it; other
  columns are ignored), relative paths resolved against the manifest's folder;
- a name with `*`, `?` or `[` that is not an existing file: a glob (`**` recurses), sorted;
- anything else: that path, as given (a missing file becomes that video's error row, never a crash).
"""

from __future__ import annotations

import csv
import glob
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from rqvqa.errors import InputError

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".flv",
        ".wmv",
        ".3gp",
        ".y4m",
        ".ogv",
    }
)
MANIFEST_EXTENSIONS = frozenset({".csv", ".parquet"})
_GLOB_CHARS = frozenset("*?[")


def is_video_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def walk_videos(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Video files below `folder`, recursively, in sorted order (streamed folder by folder)."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if is_video_name(name):
                yield os.path.join(root, name)


def manifest_videos(path: str | os.PathLike[str], batch_rows: int = 65536) -> Iterator[str]:
    """The `video` column of a CSV or Parquet manifest, resolved against the manifest's folder."""
    path = Path(path)
    base = path.parent
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            reader = pq.ParquetFile(path)
            if "video" not in reader.schema_arrow.names:
                raise InputError("manifest has no 'video' column", path)
            for batch in reader.iter_batches(batch_size=batch_rows, columns=["video"]):
                for video in batch.column(0).to_pylist():
                    if video:
                        yield str(base / video)
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise InputError(f"cannot read the Parquet manifest ({exc})", path) from None
        return
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader_csv = csv.DictReader(handle)
            fields = [f.strip().lower() for f in reader_csv.fieldnames or []]
            if "video" not in fields:
                raise InputError("manifest has no 'video' column", path)
            column = (reader_csv.fieldnames or [])[fields.index("video")]
            for row in reader_csv:
                video = (row.get(column) or "").strip()
                if video:
                    yield str(base / video)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the manifest ({exc})", path) from None


def _expand(spec: str, stdin: TextIO) -> Iterator[str]:
    if spec == "-":
        for line in stdin:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line
        return
    if os.path.isdir(spec):
        found = False
        for video in walk_videos(spec):
            found = True
            yield video
        if not found:  # one row per input: a folder without videos becomes its own error row
            yield spec
    elif os.path.isfile(spec) and os.path.splitext(spec)[1].lower() in MANIFEST_EXTENSIONS:
        yield from manifest_videos(spec)
    elif not os.path.exists(spec) and _GLOB_CHARS & set(spec):
        matches = sorted(m for m in glob.iglob(spec, recursive=True) if os.path.isfile(m))
        yield from matches if matches else [spec]
    else:
        yield spec


def iter_inputs(
    specs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], stdin: TextIO | None = None
) -> Iterator[str]:
    """Every video named by `specs` (see the module docstring), lazily, in order."""
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    for spec in specs:
        yield from _expand(os.fspath(spec), stdin if stdin is not None else sys.stdin)

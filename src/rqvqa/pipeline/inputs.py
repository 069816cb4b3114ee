"""What a collection run scores: files, folders, globs, manifests and a list on stdin, as one lazy stream.

`iter_inputs(specs)` yields one path per video, in a stable order, without materialising the collection:

- `-`: one path per non-empty line of standard input (lines starting with `#` are comments);
- a folder: every file below it (recursively, sorted) whose extension is a video's (`VIDEO_EXTENSIONS`,
  case-insensitive); a folder without any is yielded itself as a `BadInput`, so it gets an error row saying
  so (never silently nothing);
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
from rqvqa.errors import printable as _printable

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
#: the longest manifest cell taken as a path (PATH_MAX of Linux)
MAX_CELL = 4096
#: the longest CSV manifest cell read at all
MAX_CSV_CELL = 16 * 2**20
_GLOB_CHARS = frozenset("*?[")


class BadInput(str):
    """An input that cannot be a video path (a bad manifest cell): its name says where it is
    (`MANIFEST:LINE`), `reason` why; the pipeline gives it an error row without opening anything."""

    reason: str

    def __new__(cls, name: str, reason: str) -> BadInput:
        bad = super().__new__(cls, name)
        bad.reason = reason
        return bad

    def __reduce__(self):
        return BadInput, (str(self), self.reason)


def _cell_problem(video: object) -> str | None:
    """Why a manifest's `video` cell cannot be a path, or None."""
    if not isinstance(video, str):
        return f"the video cell holds {type(video).__name__} {video!r:.40}, not a path"
    if "\x00" in video:
        return "the video cell holds a NUL byte"
    if len(video) > MAX_CELL:
        return f"the video cell is {len(video)} characters long (a path has at most {MAX_CELL})"
    return None


def _bad(manifest: Path, line: int, reason: str, unit: str = "line") -> BadInput:
    name = f"{manifest}:{line}"
    return BadInput(name, f"{_printable(str(manifest))}: manifest {unit} {line}: {reason}")


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
    """The `video` column of a CSV or Parquet manifest, resolved against the manifest's folder; a cell that
    cannot be a path, or the point where the manifest stops being readable, as a `BadInput` (see the module
    docstring). A manifest without a `video` column, or that cannot be opened at all, raises InputError
    (`iter_inputs` makes it that manifest's `BadInput`)."""
    path = Path(path)
    base = path.parent
    if path.suffix.lower() == ".parquet":
        yield from _parquet_videos(path, base, batch_rows)
        return
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the manifest ({exc})", path) from None
    # the parser's cell limit (128 KiB) raised for this read, so that a long cell is that line's error row and
    # the lines after it are still read (a cell over MAX_CSV_CELL ends this manifest with one error row)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_CSV_CELL))
    try:
        yield from _csv_videos(path, base, handle)
    finally:
        csv.field_size_limit(limit)


def _csv_videos(path: Path, base: Path, handle) -> Iterator[str]:
    import _csv

    with handle:
        reader_csv = csv.DictReader(handle)
        try:
            fields = [f.strip().lower() for f in reader_csv.fieldnames or []]
        except (_csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the manifest ({exc})", path) from None
        if "video" not in fields:
            raise InputError("manifest has no 'video' column", path)
        column = (reader_csv.fieldnames or [])[fields.index("video")]
        while True:
            try:
                row = next(reader_csv, None)
            except (_csv.Error, UnicodeDecodeError, OSError) as exc:
                # the parser cannot resynchronise: the rest of this manifest is one error row
                yield _bad(path, reader_csv.line_num + 1, f"unreadable from here on ({exc})")
                return
            if row is None:
                break
            video = (row.get(column) or "").strip()
            problem = _cell_problem(video)
            if problem:
                yield _bad(path, reader_csv.line_num, problem)
            elif video:
                yield str(base / video)


def _parquet_videos(path: Path, base: Path, batch_rows: int) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        if "video" not in reader.schema_arrow.names:
            raise InputError("manifest has no 'video' column", path)
        kind = reader.schema_arrow.field("video").type
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise InputError(f"cannot read the Parquet manifest ({exc})", path) from None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        yield _bad(path, 1, f"the video column holds {kind} values, not paths", "row")
        return
    row = 0
    try:
        for batch in reader.iter_batches(batch_size=batch_rows, columns=["video"]):
            for video in batch.column(0).to_pylist():
                row += 1
                problem = _cell_problem(video) if video is not None else None
                if problem:
                    yield _bad(path, row, problem, "row")
                elif video:
                    yield str(base / video)
    except (OSError, ValueError) as exc:
        yield _bad(path, row + 1, f"unreadable from here on ({exc})", "row")


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
            yield BadInput(
                spec,
                f"{_printable(spec)}: no video file in this folder or below it (looked for "
                f"{', '.join(sorted(VIDEO_EXTENSIONS))})",
            )
    elif os.path.isfile(spec) and os.path.splitext(spec)[1].lower() in MANIFEST_EXTENSIONS:
        try:
            yield from manifest_videos(spec)
        except InputError as exc:  # not a manifest at all: its own error row, the other inputs go on
            yield BadInput(spec, str(exc))
    elif not os.path.exists(spec) and _GLOB_CHARS & set(spec):
        matches = sorted(m for m in glob.iglob(spec, recursive=True) if os.path.isfile(m))
        yield from matches if matches else [spec]
    else:
        yield spec


def unique_inputs(
    specs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], stdin: TextIO | None = None
) -> Iterator[str]:
    """`iter_inputs`, each path once: a path named twice (a glob and a manifest overlapping, `a/../a.mp4`)
    keeps its first name."""
    seen: set[str] = set()
    for path in iter_inputs(specs, stdin):
        same = path if isinstance(path, BadInput) else os.path.normpath(os.path.abspath(path))
        if same not in seen:
            seen.add(same)
            yield path


def iter_inputs(
    specs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], stdin: TextIO | None = None
) -> Iterator[str]:
    """Every video named by `specs` (see the module docstring), lazily, in order."""
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    for spec in specs:
        yield from _expand(os.fspath(spec), stdin if stdin is not None else sys.stdin)

"""Result files that survive anything: one row per video, appended as soon as the video finishes.

The format follows the extension of `--out`:

- `.jsonl`: one strict-JSON row per line;
- `.csv`: the result-row columns of `rqvqa.results.CSV_COLUMNS` plus the collection columns
  (`COLLECTION_COLUMNS`; `extra` as a JSON cell); the diagnosis reads back as each kind's level and
  `detected` (from the `issues` column, exposure's direction with it), without per-second curves;
- `.parquet`: a *folder* in the Parquet dataset layout (pandas, pyarrow, Spark, DuckDB and Ray read it as one
  table): every finished row is written at once as a small part file, moved into place atomically, and every
  `compact_every` parts are merged into one larger part. A reader never sees a half-written part.

Crash safety: each row is flushed and fsync'ed before the next video is reported; a `kill -9` can leave at
most a partial last line (JSONL/CSV) or a temporary file (Parquet, named `.*.tmp`, ignored by readers), and
opening the file again (`--resume`) repairs it. A killed compaction can leave a merged part next to the parts
it merged; readers of this module drop the duplicates and the next open deletes the merged-away parts.

`--resume` (`ResultWriter.done`) skips the paths that already have an ok row for the same (model, weights,
options); a path whose row is an error is scored again, and its new row **supersedes** the old one: readers
of this module (`read_results`, `ResultWriter.rows`) give the latest row of each (path, model, weights,
options), so a file read back holds one row per input path. Files with the same bytes under two paths get a
row each.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rqvqa.diagnosis.thresholds import KINDS
from rqvqa.errors import ConfigError, InputError
from rqvqa.files import atomic_write
from rqvqa.results import CSV_COLUMNS, STATUS_OK, VIDEO_FIELDS, csv_row, dumps_json, options_key

#: columns a collection run adds to the result row (`rqvqa.results`)
COLLECTION_COLUMNS = ["weights", "options", "size", "content_key", "cpu_s", "model_s"]
FORMATS = (".parquet", ".csv", ".jsonl")


def _key(path: str, model: str, weights: str | None, options: Any) -> tuple[str, ...]:
    return (path, model, weights or "default", options_key(options))


def resume_key(path: str, card: Any) -> tuple[str, ...]:
    """What `--resume` matches on: the input path and the identity of the model instance
    (`rqvqa.registry.Card`: name, weights, options)."""
    return _key(path, card.name, card.weights, card.options)


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return _key(row["path"], row["model"], row.get("weights"), row.get("options"))


def latest_rows(rows: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (path, model, weights, options): the latest written supersedes the earlier ones (a row
    retried by `--resume`), at the place of the first."""
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        latest[row_key(row)] = row
    return list(latest.values())


def _fsync_append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that a killed writer left without its newline."""
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        step, end = 1 << 16, size
        while end > 0:
            start = max(0, end - step)
            handle.seek(start)
            chunk = handle.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            end = start
        handle.truncate(0)


class ResultWriter(ABC):
    """Append rows to one result file; `rows()` reads back what is there."""

    suffix = ""

    def __init__(self, path: str | os.PathLike[str], resume: bool = False):
        self.path = Path(path)
        if self.path.exists() and not resume and self._has_rows():
            raise ConfigError(
                f"{self.path} already holds results: pass --resume to continue it, or remove it"
            )
        self._open()

    def _has_rows(self) -> bool:
        return next(iter(self.read(self.path)), None) is not None

    def _open(self) -> None:  # noqa: B027 (an optional hook: most formats need no set-up)
        """Create the file or repair what a killed run left."""

    @abstractmethod
    def write(self, row: dict[str, Any]) -> None:
        """Append one finished video's row, durably (it survives a kill of the process right after)."""

    @classmethod
    @abstractmethod
    def read(cls, path: Path) -> Iterator[dict[str, Any]]:
        """The rows in the file at `path` (a partial last row of a killed run is ignored)."""

    def rows(self) -> list[dict[str, Any]]:
        """The rows in the file, the latest of each path (`latest_rows`)."""
        return latest_rows(self.read(self.path))

    def done(self) -> set[tuple[str, ...]]:
        """The keys (`row_key`) of the paths whose latest row is ok: what `--resume` skips."""
        return {row_key(r) for r in self.rows() if r["status"] == STATUS_OK}

    def close(self) -> None:  # noqa: B027 (an optional hook: only buffered formats flush)
        """Flush what is buffered (nothing is, for JSONL and CSV)."""


class JsonlWriter(ResultWriter):
    suffix = ".jsonl"

    def _open(self) -> None:  # noqa: B027 (an optional hook: most formats need no set-up)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        _drop_partial_line(self.path)

    def write(self, row: dict[str, Any]) -> None:
        _fsync_append(self.path, (dumps_json(row) + "\n").encode())

    @classmethod
    def read(cls, path: Path) -> Iterator[dict[str, Any]]:
        if not path.is_file():
            return
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith("\n"):
                    return  # a partial last line: the row was not finished
                try:
                    row = json.loads(line)
                except ValueError:
                    raise InputError(f"line {number} is not a JSON row", path) from None
                if not isinstance(row, dict):
                    raise InputError(f"line {number} is not a JSON row (an object)", path)
                # a row of an earlier version has no video facts, diagnosis or notes: the same shape anyway
                yield {"video": None, "diagnosis": None, "notes": [], **row}


class CsvWriter(ResultWriter):
    suffix = ".csv"
    columns = [*CSV_COLUMNS, *COLLECTION_COLUMNS, "extra"]

    def _open(self) -> None:  # noqa: B027 (an optional hook: most formats need no set-up)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        _drop_partial_line(self.path)
        if self.path.stat().st_size == 0:
            _fsync_append(self.path, self._line(self.columns))
        else:
            with self.path.open(encoding="utf-8", errors="surrogateescape") as handle:
                header = handle.readline().rstrip("\n").split(",")
            if header != self.columns:
                raise InputError(f"not a result file of this version (columns {header})", self.path)

    @staticmethod
    def _line(cells: list[str]) -> bytes:
        import csv
        import io

        buffer = io.StringIO()
        # RFC 4180's line end: a cell holding a carriage return or a newline (a file name may) is quoted
        csv.writer(buffer, lineterminator="\r\n").writerow(cells)
        # a name that is not UTF-8 (its bytes are surrogates in Python) is written as its own bytes
        return buffer.getvalue().encode("utf-8", "surrogateescape")

    def write(self, row: dict[str, Any]) -> None:
        timings = row.get("timings") or {}
        cells = csv_row(row) + [
            row.get("weights") or "",
            options_key(row.get("options")),
            "" if row.get("size") is None else str(row["size"]),
            row.get("content_key") or "",
            *("" if timings.get(k) is None else repr(float(timings[k])) for k in ("cpu_s", "model_s")),
            dumps_json(row.get("extra") or {}),
        ]
        _fsync_append(self.path, self._line(cells))

    @classmethod
    def read(cls, path: Path) -> Iterator[dict[str, Any]]:
        import csv
        import io

        if not path.is_file():
            return
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        # csv parses quoted newlines, carriage returns and U+2028 inside a cell (a path may hold them)
        for cells in csv.DictReader(io.StringIO(text, newline="")):
            yield _row_from_cells(cells)


def _number(cell: str | None) -> float | None:
    return None if cell in (None, "") else float(cell)


def _csv_video(cells: dict[str, Any]) -> dict[str, Any] | None:
    if all(cells.get(name) in (None, "") for name in VIDEO_FIELDS):
        return None
    video: dict[str, Any] = {name: _number(cells.get(name)) for name in VIDEO_FIELDS}
    for name in ("width", "height", "frames"):
        video[name] = None if video[name] is None else int(video[name])
    return video


def _csv_diagnosis(cells: dict[str, Any]) -> dict[str, dict] | None:
    """The diagnosis from CSV cells: each kind's level, `detected` from the issues column (curves are not
    in CSV)."""
    if all(cells.get(kind) in (None, "") for kind in KINDS) and not cells.get("issues"):
        return None
    detected: dict[str, str | None] = {}
    for item in (cells.get("issues") or "").split(", "):
        kind, _, direction = item.partition(" (")
        detected[kind] = direction.rstrip(")") or None
    diagnosis = {
        kind: {"level": _number(cells.get(kind)), "detected": kind in detected, "per_second": []}
        for kind in KINDS
    }
    diagnosis["exposure"]["direction"] = detected.get("exposure")
    return diagnosis


def _row_from_cells(cells: dict[str, Any]) -> dict[str, Any]:
    """A row read back from CSV or Parquet cells into the in-memory row shape."""
    per_second = cells.get("per_second")
    if isinstance(per_second, str):
        per_second = [_number(s) for s in per_second.split(" ")] if per_second else []
    extra = cells.get("extra")
    lower = cells.get("lower_better")
    raw = cells.get("path_bytes")
    return {
        "path": os.fsdecode(raw) if raw is not None else cells["path"],
        "model": cells["model"],
        "status": cells["status"],
        "score": _number(cells.get("score")) if isinstance(cells.get("score"), str) else cells.get("score"),
        "lower_better": lower == "true" if isinstance(lower, str) else bool(lower),
        "per_second": list(per_second or []),
        "error": cells.get("error") or None,
        "weights": cells.get("weights") or "default",
        "options": json.loads(cells["options"]) if cells.get("options") else {},
        "size": int(cells["size"]) if cells.get("size") not in (None, "") else None,
        "content_key": cells.get("content_key") or None,
        "timings": {
            k: (_number(cells.get(k)) if isinstance(cells.get(k), str) else cells.get(k))
            for k in ("cpu_s", "model_s")
        },
        "extra": json.loads(extra) if extra else {},
        **_described(cells),
    }


def _described(cells: dict[str, Any]) -> dict[str, Any]:
    """`video`, `diagnosis` and `notes` from CSV cells (flat) or Parquet cells (`video` a struct,
    `diagnosis` a JSON cell, `notes` a list)."""
    if isinstance(cells.get("notes"), list) or "diagnosis" in cells:  # Parquet
        diagnosis = cells.get("diagnosis")
        return {
            "video": cells.get("video"),
            "diagnosis": json.loads(diagnosis) if diagnosis else None,
            "notes": list(cells.get("notes") or []),
        }
    notes = cells.get("notes") or ""
    return {
        "video": _csv_video(cells),
        "diagnosis": _csv_diagnosis(cells),
        "notes": notes.split("\n") if notes else [],
    }


_PART = re.compile(r"^part-(\d{9})(?:-(\d{9}))?\.parquet$")


def _parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            # the name's bytes (`os.fsencode`): exact for a name that is not UTF-8, which `path` shows escaped
            ("path_bytes", pa.binary()),
            ("model", pa.string()),
            ("status", pa.string()),
            ("score", pa.float64()),
            ("lower_better", pa.bool_()),
            ("per_second", pa.list_(pa.float64())),
            ("error", pa.string()),
            ("weights", pa.string()),
            ("options", pa.string()),
            ("size", pa.int64()),
            ("content_key", pa.string()),
            ("cpu_s", pa.float64()),
            ("model_s", pa.float64()),
            ("extra", pa.string()),
            (
                "video",
                pa.struct(
                    [
                        ("width", pa.int64()),
                        ("height", pa.int64()),
                        ("fps", pa.float64()),
                        ("duration", pa.float64()),
                        ("frames", pa.int64()),
                    ]
                ),
            ),
            ("diagnosis", pa.string()),
            ("notes", pa.list_(pa.string())),
        ]
    )


class ParquetWriter(ResultWriter):
    """A Parquet dataset folder: `part-<n>.parquet` per finished row, merged into `part-<a>-<b>.parquet`."""

    suffix = ".parquet"

    def __init__(self, path: str | os.PathLike[str], resume: bool = False, compact_every: int = 64):
        self.compact_every = compact_every
        super().__init__(path, resume)

    @staticmethod
    def _parts(folder: Path) -> list[tuple[int, int, Path]]:
        """(first, last, path) of every part, sorted."""
        if not folder.is_dir():
            return []
        parts = []
        for entry in os.scandir(folder):
            m = _PART.match(entry.name)
            if m:
                first = int(m.group(1))
                parts.append((first, int(m.group(2) or first), Path(entry.path)))
        return sorted(parts)

    @classmethod
    def _live_parts(cls, folder: Path) -> tuple[list[tuple[int, int, Path]], list[Path]]:
        """The parts to read, and those a finished compaction already merged (to delete)."""
        parts = cls._parts(folder)
        merged = [(a, b) for a, b, _ in parts if b > a]
        live, dead = [], []
        for a, b, p in parts:
            if any(ma <= a and b <= mb and (ma, mb) != (a, b) for ma, mb in merged):
                dead.append(p)
            else:
                live.append((a, b, p))
        return live, dead

    def _open(self) -> None:  # noqa: B027 (an optional hook: most formats need no set-up)
        import pyarrow.parquet  # noqa: F401 - without the parquet extra, fail before the folder is made

        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file: a Parquet result is a folder of parts")
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        live, dead = self._live_parts(self.path)
        for p in dead:
            p.unlink(missing_ok=True)
        self._next = max((b for _, b, _ in live), default=-1) + 1
        self._singles = [(a, p) for a, b, p in live if a == b]

    def _write_table(self, table, name: str) -> Path:
        import pyarrow.parquet as pq

        return atomic_write(self.path / name, lambda tmp: pq.write_table(table, tmp))

    def write(self, row: dict[str, Any]) -> None:
        import pyarrow as pa

        timings = row.get("timings") or {}
        record = {
            **{k: row.get(k) for k in ("model", "status", "score", "lower_better", "per_second", "error")},
            "path": os.fsencode(row["path"]).decode("utf-8", "backslashreplace"),
            "path_bytes": os.fsencode(row["path"]),
            "weights": row.get("weights") or "default",
            "options": options_key(row.get("options")),
            "size": row.get("size"),
            "content_key": row.get("content_key"),
            "cpu_s": timings.get("cpu_s"),
            "model_s": timings.get("model_s"),
            "extra": dumps_json(row.get("extra") or {}),
            "video": row.get("video"),
            "diagnosis": None if row.get("diagnosis") is None else dumps_json(row["diagnosis"]),
            "notes": list(row.get("notes") or []),
        }
        table = pa.Table.from_pylist([record], schema=_parquet_schema())
        n = self._next
        self._next += 1
        self._singles.append((n, self._write_table(table, f"part-{n:09d}.parquet")))
        if len(self._singles) >= self.compact_every:
            self._compact()

    def _compact(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        singles, self._singles = self._singles, []
        first, last = singles[0][0], singles[-1][0]
        table = pa.concat_tables([pq.read_table(p, schema=_parquet_schema()) for _, p in singles])
        self._write_table(table, f"part-{first:09d}-{last:09d}.parquet")
        for _, p in singles:  # a kill here leaves duplicates that the next open removes
            p.unlink(missing_ok=True)

    def close(self) -> None:  # noqa: B027 (an optional hook: only buffered formats flush)
        if len(self._singles) > 1:
            self._compact()

    @classmethod
    def read(cls, path: Path) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        live, _ = cls._live_parts(path)
        for _, _, p in live:
            for record in pq.read_table(p, schema=_parquet_schema()).to_pylist():
                yield _row_from_cells(record)


def _format(path: str | os.PathLike[str]) -> type[ResultWriter]:
    suffix = Path(path).suffix.lower()
    for cls in (ParquetWriter, CsvWriter, JsonlWriter):
        if cls.suffix == suffix:
            return cls
    raise ConfigError(f"{path}: unknown result format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")


def open_writer(path: str | os.PathLike[str], resume: bool = False) -> ResultWriter:
    """The writer for `path`'s format (by extension: .parquet, .csv, .jsonl)."""
    return _format(path)(path, resume=resume)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a result file of any format: one per path and model instance, the latest (a row a
    `--resume` retried supersedes the old one); a partial last row of a killed run is left out."""
    return latest_rows(_format(path).read(Path(path)))

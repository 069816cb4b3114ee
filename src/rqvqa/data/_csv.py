"""Reading small user CSV/text tables with errors that name the file and the line."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rqvqa.errors import InputError


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, a leading BOM removed), or InputError saying why it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None


def read_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows as ``(line number, stripped fields)``, lines numbered from 1 as in an editor."""
    text = read_text(path)
    # newline='' lets the csv module see the original line ends (quoted fields, \r\n files).
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((reader.line_num, [f.strip() for f in fields]))
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: malformed CSV ({exc})", path) from None
    if not rows:
        raise InputError("empty file", path)
    return rows


def parse_float(value: str, path: str | Path, line: int, column: str) -> float:
    """A finite float from a CSV field, or InputError naming the file, line and column."""
    try:
        number = float(value)
    except ValueError:
        shown = repr(value) if value else "empty"
        raise InputError(f"line {line}: {column} is {shown}, expected a number", path) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(f"line {line}: {column} is {value}, expected a finite number", path)
    return number


def header_index(header: list[str]) -> dict[str, int]:
    """Column name (lower-case) -> position."""
    return {name.lower(): k for k, name in enumerate(header)}

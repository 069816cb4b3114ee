"""Score tables (``filename,score`` CSVs) and NTIRE 2024 rank-pair files (.xlsx, .json)."""

from __future__ import annotations

import json
from pathlib import Path

from rqvqa.data._csv import header_index, parse_float, read_rows, read_text
from rqvqa.errors import InputError
from rqvqa.metrics import RankPair

NAME_COLUMNS = ("filename", "video", "name")
SCORE_COLUMNS = ("score", "mos")
RANK_SHEETS = ("nonsource", "source")


def _pick(columns: dict[str, int], choices: tuple[str, ...], path: Path, what: str) -> int:
    for name in choices:
        if name in columns:
            return columns[name]
    raise InputError(f"no {what} column in the header (expected one of: {', '.join(choices)})", path)


def read_scores(path: str | Path) -> dict[str, float]:
    """Read a CSV with a header holding a name column (``filename``/``video``/``name``) and a score column
    (``score``/``mos``), in file order. Blank or non-numeric scores and repeated names raise InputError."""
    path = Path(path)
    rows = read_rows(path)
    (_, header), body = rows[0], rows[1:]
    columns = header_index(header)
    name_col = _pick(columns, NAME_COLUMNS, path, "file-name")
    score_col = _pick(columns, SCORE_COLUMNS, path, "score")
    scores: dict[str, float] = {}
    first_line: dict[str, int] = {}
    for line, fields in body:
        if len(fields) <= max(name_col, score_col):
            raise InputError(f"line {line}: {len(fields)} fields, expected at least {len(header)}", path)
        name = fields[name_col]
        if not name:
            raise InputError(f"line {line}: empty file name", path)
        if name in scores:
            raise InputError(f"line {line}: {name} repeats line {first_line[name]}", path)
        scores[name] = parse_float(fields[score_col], path, line, header[score_col])
        first_line[name] = line
    if not scores:
        raise InputError("no rows after the header", path)
    return scores


def _parse_pair(row, path: Path, where: str) -> RankPair:
    if len(row) < 3 or row[0] is None or row[1] is None:
        raise InputError(f"{where}: expected (video1, video2, rank), got {list(row)}", path)
    try:
        rank = float(row[2])
    except (TypeError, ValueError):
        rank = float("nan")
    if rank not in (1.0, 2.0):
        raise InputError(f"{where}: rank is {row[2]!r}, expected 1 or 2", path)
    return RankPair(str(row[0]).strip(), str(row[1]).strip(), int(rank))


def _read_xlsx_pairs(path: Path) -> dict[str, list[RankPair]]:
    try:
        import openpyxl
    except ImportError:
        raise InputError("reading .xlsx rank pairs needs openpyxl (pip install openpyxl)", path) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types for a bad workbook
        raise InputError(f"not a readable .xlsx workbook ({type(exc).__name__})", path) from None
    try:
        pairs: dict[str, list[RankPair]] = {}
        for sheet in RANK_SHEETS:
            if sheet not in book.sheetnames:
                raise InputError(f"no sheet named {sheet!r} (found: {', '.join(book.sheetnames)})", path)
            rows = book[sheet].iter_rows(values_only=True)
            next(rows, None)  # the first row is a header, as pandas' header=0 in the official scorer
            pairs[sheet] = [
                _parse_pair(row, path, f"sheet {sheet} row {k}")
                for k, row in enumerate(rows, start=2)
                if any(v is not None and str(v).strip() for v in row)
            ]
        return pairs
    finally:
        book.close()


def _read_json_pairs(path: Path) -> dict[str, list[RankPair]]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON (line {exc.lineno}: {exc.msg})", path) from None
    # Either {"sheets": {"nonsource": {"rows": [...]}, ...}} (the fixtures' rank_pairs.json) or the short
    # form {"nonsource": [[v1, v2, rank], ...], "source": [...]}.
    sheets = data.get("sheets", data) if isinstance(data, dict) else None
    if not isinstance(sheets, dict):
        raise InputError("expected a JSON object with 'nonsource' and 'source' pair lists", path)
    pairs: dict[str, list[RankPair]] = {}
    for sheet in RANK_SHEETS:
        entry = sheets.get(sheet)
        rows = entry.get("rows") if isinstance(entry, dict) else entry
        if not isinstance(rows, list):
            raise InputError(f"no {sheet!r} pair list", path)
        pairs[sheet] = [_parse_pair(row, path, f"{sheet} pair {k}") for k, row in enumerate(rows, start=1)]
    return pairs


def read_rank_pairs(path: str | Path) -> dict[str, list[RankPair]]:
    """Rank pairs by sheet (``nonsource``, ``source``) from the official workbook (``rank-pair-val.xlsx``: two
    sheets, three positional columns video1, video2, rank in {1, 2}, first row a header) or from JSON."""
    path = Path(path)
    if not path.is_file():
        read_text(path)  # raises the right "not found" / "is a directory" error
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx_pairs(path)
    if suffix == ".json":
        return _read_json_pairs(path)
    raise InputError("rank pairs must be an .xlsx workbook or a .json file", path)

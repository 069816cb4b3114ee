"""Score tables, prediction files and NTIRE 2024 rank-pair files.

- Label tables as published: KoNViD-1k ``metadata.csv`` (``flickr_id``, ``mos``), YouTube-UGC (``vid``,
  ``MOSFull``), KVQ (``filename``, ``score``), or any ``filename,score`` CSV.
- Prediction files as ``rqvqa predict`` writes them (``--csv``, ``--json``) and JSON Lines: result rows
  (``path``, ``model``, ``status``, ``score``, ``lower_better``, ``per_second``, ``error``, ``extra``, and
  where present ``video``, ``diagnosis``, ``notes``); rows without ``status``/``error`` (older outputs) are
  read as ``ok`` when they have a score, rows without the newer fields get ``None`` / ``[]``.
- Rank pairs (.xlsx, .json) for the NTIRE 2024 score.

Names are matched by `match_by_name`: a full path in one file matches a bare file name, a relative path or an
id (the file name without its extension) in the other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

from rqvqa.data._csv import header_index, parse_float, read_rows, read_text
from rqvqa.errors import InputError
from rqvqa.extras import require
from rqvqa.metrics import RankPair

NAME_COLUMNS = ("filename", "video", "name", "path", "flickr_id", "vid")
SCORE_COLUMNS = ("score", "mos", "mosfull")
RANK_SHEETS = ("nonsource", "source")


def _pick(columns: dict[str, int], choices: tuple[str, ...], path: Path, what: str) -> int:
    for name in choices:
        if name in columns:
            return columns[name]
    raise InputError(f"no {what} column in the header (expected one of: {', '.join(choices)})", path)


def _models(rows: list[dict[str, Any]], model: str | None, path: Path) -> list[dict[str, Any]]:
    """The rows of `model`; without `model`, all rows, which must then be of one model."""
    found = list(dict.fromkeys(r["model"] for r in rows if r.get("model")))
    if model is not None:
        if model not in found:
            raise InputError(f"no rows of model {model!r} (found: {', '.join(found) or 'none'})", path)
        return [r for r in rows if r.get("model") == model]
    if len(found) > 1:
        raise InputError(f"rows of several models ({', '.join(found)}); choose one with --model", path)
    return rows


def read_scores(path: str | Path, model: str | None = None) -> dict[str, float]:
    """Name -> score from a CSV with a header holding a name column (``filename``/``video``/``name``/``path``/
    ``flickr_id``/``vid``) and a score column (``score``/``mos``/``MOSFull``), in file order, or from a
    prediction file (`read_predictions`: .json/.jsonl, or a CSV with a ``status`` column). Rows of failed
    predictions are left out; blank or non-numeric scores elsewhere and repeated names raise InputError.
    `model` picks one model's rows from a prediction file holding several."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".jsonl", ".parquet") or _is_result_csv(path):
        rows = _models(read_predictions(path), model, path)
        scores: dict[str, float] = {}
        for k, row in enumerate(rows, start=1):
            if row["status"] != "ok":
                continue
            if row["path"] in scores:
                raise InputError(f"row {k}: {row['path']} is predicted twice", path)
            scores[row["path"]] = row["score"]
        if not scores:
            raise InputError("no successful prediction in the file", path)
        return scores
    rows = read_rows(path)
    (_, header), body = rows[0], rows[1:]
    columns = header_index(header)
    name_col = _pick(columns, NAME_COLUMNS, path, "file-name")
    score_col = _pick(columns, SCORE_COLUMNS, path, "score")
    model_col = columns.get("model")
    if model is not None and model_col is None:
        raise InputError(f"no model column to pick model {model!r} from", path)
    scores = {}
    first_line: dict[str, int] = {}
    for line, fields in body:
        if len(fields) <= max(name_col, score_col):
            raise InputError(f"line {line}: {len(fields)} fields, expected at least {len(header)}", path)
        if model is not None and fields[model_col] != model:
            continue
        name = fields[name_col]
        if not name:
            raise InputError(f"line {line}: empty file name", path)
        if name in scores:
            raise InputError(f"line {line}: {name} repeats line {first_line[name]}", path)
        scores[name] = parse_float(fields[score_col], path, line, header[score_col])
        first_line[name] = line
    if not scores:
        raise InputError("no rows after the header" if model is None else f"no rows of model {model!r}", path)
    return scores


def read_direction(path: str | Path, model: str | None = None) -> bool | None:
    """Whether the predictions of a result file are lower-is-better (its rows' ``lower_better``); None for a
    plain ``filename,score`` CSV, which does not say."""
    path = Path(path)
    if not (path.suffix.lower() in (".json", ".jsonl", ".parquet") or _is_result_csv(path)):
        return None
    rows = _models(read_predictions(path), model, path)
    return any(r["lower_better"] for r in rows if r["status"] == "ok")


# ------------------------------------------------------------------------------------------ prediction files


def _is_result_csv(path: Path) -> bool:
    """A CSV as `rqvqa predict --csv` writes it: a ``path`` and a ``model`` column."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    columns = header_index(read_rows(path)[0][1])
    return "path" in columns and "model" in columns


def _finite(value: Any, path: Path, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a number", path) from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {value} is not a finite number", path)
    return number


def _bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _json_cell(value: Any) -> Any:
    """A field as written: JSON rows hold the value, CSV and Parquet cells may hold its JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _diagnosis(raw: dict[str, Any]) -> dict[str, dict] | None:
    """The artifact diagnosis of a row: the ``diagnosis`` object, or from a CSV's columns (a level column
    per kind and the ``issues`` column naming the detected kinds; no per-second curve there)."""
    from rqvqa.diagnosis.thresholds import KINDS

    value = _json_cell(raw.get("diagnosis"))
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if isinstance(v, dict)} or None
    if not any(raw.get(kind) not in (None, "") for kind in KINDS):
        return None
    issues = {part.split("(")[0].strip() for part in str(raw.get("issues") or "").split(",")}
    result = {}
    for kind in KINDS:
        try:
            level = float(raw.get(kind))
        except (TypeError, ValueError):
            level = None
        level = level if level is not None and math.isfinite(level) else None
        result[kind] = {"level": level, "detected": kind in issues, "per_second": []}
    return result


def _notes(raw: dict[str, Any]) -> list[str]:
    value = _json_cell(raw.get("notes"))
    if isinstance(value, list):
        return [str(n) for n in value if str(n).strip()]
    return [str(value)] if isinstance(value, str) and value.strip() else []


def _video(raw: dict[str, Any]) -> dict[str, Any] | None:
    value = _json_cell(raw.get("video"))
    if isinstance(value, dict):
        return value
    facts = {k: raw.get(k) for k in ("width", "height", "fps", "duration") if raw.get(k) not in (None, "")}
    try:
        return {k: float(v) for k, v in facts.items()} or None
    except (TypeError, ValueError):
        return None


def _result_row(raw: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    """A result row with every field of the row contract, checked; missing status/error derived."""
    name = raw.get("path")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: no path", path)
    score = _finite(raw.get("score"), path, f"{where} score")
    per_second = raw.get("per_second") or []
    if isinstance(per_second, str):
        per_second = per_second.split(" ") if per_second.strip() else []
    if not isinstance(per_second, list):
        raise InputError(f"{where}: per_second is not a list", path)
    status = raw.get("status") or ("ok" if score is not None else "error")
    if status not in ("ok", "error"):
        raise InputError(f"{where}: status is {status!r}, expected ok or error", path)
    if status == "ok" and score is None:
        raise InputError(f"{where}: status ok without a score", path)
    extra = raw.get("extra") or {}
    if isinstance(extra, str):  # a result file's JSON cell (CSV and Parquet result files)
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            raise InputError(f"{where}: extra is not JSON", path) from None
    extra = dict(extra) if isinstance(extra, dict) else {}
    frames = raw.get("second_frames")
    if isinstance(frames, str) and frames.strip():  # `rqvqa predict --csv`
        try:
            extra["second_frames"] = [int(f) for f in frames.split()]
        except ValueError:
            raise InputError(f"{where}: second_frames is not a list of frame numbers", path) from None
    return {
        "path": name,
        "model": str(raw.get("model") or ""),
        "status": status,
        "score": score if status == "ok" else None,
        "lower_better": _bool(raw.get("lower_better")),
        "per_second": [_finite(v, path, f"{where} per_second[{k}]") for k, v in enumerate(per_second)],
        "error": raw.get("error") or (None if status == "ok" else "failed (no reason recorded)"),
        "extra": extra,
        "video": _video(raw),
        "diagnosis": _diagnosis(raw),
        "notes": _notes(raw),
    }


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    require("parquet", f"{path}: reading .parquet predictions")
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"not a readable Parquet file ({type(exc).__name__})", path) from None


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Result rows from a prediction file: `rqvqa predict --json` (a JSON list of rows, or an object with a
    ``results`` list), JSON Lines (one row a line), Parquet (one row a record; needs pyarrow), or
    `rqvqa predict --csv` (``per_second`` space-separated,
    blank for a second without a score). Rows come in file order with every field of the row contract."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        raws = []
        for line_no, line in enumerate(read_text(path).splitlines(), start=1):
            if line.strip():
                try:
                    raws.append((f"line {line_no}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {line_no}: invalid JSON ({exc.msg})", path) from None
    elif suffix == ".parquet":
        raws = [(f"row {k}", row) for k, row in enumerate(_parquet_rows(path), start=1)]
    elif suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON (line {exc.lineno}: {exc.msg})", path) from None
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        if not isinstance(data, list):
            raise InputError("expected a JSON list of result rows", path)
        raws = [(f"row {k}", row) for k, row in enumerate(data, start=1)]
    else:
        rows = read_rows(path)
        header = [h.lower() for h in rows[0][1]]
        if "path" not in header:
            raise InputError("no path column in the header (not an `rqvqa predict --csv` file)", path)
        raws = [(f"line {line}", dict(zip(header, fields, strict=False))) for line, fields in rows[1:]]
    for where, raw in raws:
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected an object", path)
    result = [_result_row(raw, path, where) for where, raw in raws]
    if not result:
        raise InputError("no result rows", path)
    return result


# ------------------------------------------------------------------------------------------ name matching


def _keys(name: str) -> list[str]:
    """The names a file is known by: each trailing part of its path (``a/b/c.mp4``, ``b/c.mp4``, ``c.mp4``)
    and each of these without the extension (``c``: a KoNViD-1k flickr id, a YouTube-UGC vid)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    parts = tuple(p for p in parts if p not in ("/", "."))
    keys: list[str] = []
    for k in range(len(parts)):
        tail = "/".join(parts[k:])
        keys.append(tail)
        stem = str(PurePosixPath(tail).with_suffix("")) if PurePosixPath(tail).suffix else tail
        keys.append(stem)
    return keys


def match_by_name(pred: dict[str, float], labels: dict[str, float]) -> dict[str, str]:
    """Label name -> prediction name, for the labels that have a prediction. An exact name wins; otherwise
    the label (with and without its extension) is looked up among the trailing parts of each prediction's
    path, with and without extension. A label that matches several predictions raises InputError."""
    index: dict[str, set[str]] = {}
    for name in pred:
        for key in _keys(name):
            index.setdefault(key, set()).add(name)
    matched: dict[str, str] = {}
    for label in labels:
        if label in pred:
            matched[label] = label
            continue
        own = _keys(label)
        for key in (own[0], own[1]) if own else ():
            found = index.get(key)
            if found:
                if len(found) > 1:
                    shown = ", ".join(sorted(found)[:3])
                    raise InputError(f"label {label!r} matches several predictions ({shown})")
                matched[label] = next(iter(found))
                break
    return matched


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
    require("xlsx", f"{path}: reading .xlsx rank pairs")
    import openpyxl

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

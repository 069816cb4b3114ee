"""The result row: what every entry point (CLI, service, pipeline writers) reports for one video.

A row is a plain dict, JSON-ready:

- `path` (str), `model` (str), `lower_better` (bool);
- `status`: "ok" or "error";
- `score`: a finite float, or None on error;
- `per_second`: one finite float or None (a second the model could not measure) per second of video;
- `error`: None, or one line naming the file and the reason;
- `extra`: model details (dict; `traceback` is added here in debug mode);
- `weights`, `options`: which weights and options produced it (the instance card's, `rqvqa.registry.Card`).

The pipeline (`rqvqa.pipeline`, and `rqvqa.pipeline.score_video` for one video) produces it, adding the
collection columns (`size`, `content_key`, `timings`), and never raises for a per-video failure:
any exception while handling that video (not only rqvqa's own errors: a decoder bug, a torch RuntimeError, out
of memory) becomes that video's error row, so a batch always finishes. No NaN or inf leaves it: a non-finite
per-second value becomes None, a non-finite video score an error row. `dumps_json` is strict JSON
(`allow_nan=False`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from rqvqa.errors import RqvqaError


@dataclass
class Prediction:
    """What a model says about one video."""

    score: float
    #: one score per second; None for a second the model could not measure (flat content, too small)
    per_second: list[float | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


STATUS_OK = "ok"
STATUS_ERROR = "error"

#: column order of the CSV form of a row (`extra` is left out: it is nested; the frame each second's score
#: came from, `extra["second_frames"]`, has its own column so thumbnails can show it)
CSV_COLUMNS = ["path", "model", "status", "score", "lower_better", "per_second", "second_frames", "error"]


def one_line(exc: BaseException, path: str | os.PathLike[str] | None = None) -> str:
    """A one-line reason for `exc`. rqvqa's errors already name their file; others get the file and the
    exception type prefixed (an unexpected error says what kind it was, not a traceback)."""
    if isinstance(exc, RqvqaError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        detail = str(exc).strip()
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if path is not None and not (isinstance(exc, RqvqaError) and exc.path is not None):
        text = f"{os.fspath(path)}: {text}"
    # one line: keep the first non-empty line of a multi-line message
    first = next((line.strip() for line in text.splitlines() if line.strip()), text.strip())
    return first


def finite_or_none(value: Any) -> float | None:
    """`value` as a float when finite, else None."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def jsonable(obj: Any) -> Any:
    """A copy of `obj` that strict JSON accepts: numpy scalars and arrays become Python numbers and lists,
    non-finite floats become None, paths and other objects their string."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return finite_or_none(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return jsonable(tolist())
    return str(obj)


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """Strict JSON (never a bare NaN / Infinity): `obj` is passed through `jsonable` first."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)


def options_key(options: Any) -> str:
    """A row's (or a card's) options as one canonical string: part of what `--resume` matches on."""
    return json.dumps(jsonable(dict(options or {})), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _identity(card: Any) -> dict[str, Any]:
    """The row fields that say what produced it: the instance card's name, direction, weights and options."""
    return {
        "model": card.name,
        "lower_better": bool(card.lower_better),
        "weights": card.weights,
        "options": dict(card.options),
    }


def ok_row(card: Any, path: str | os.PathLike[str], prediction: Prediction) -> dict[str, Any]:
    """The row of a successful prediction by the model described by `card` (`rqvqa.registry.Card`); a
    non-finite video score makes it an error row."""
    score = finite_or_none(prediction.score)
    if score is None:
        return error_row(card, path, f"{os.fspath(path)}: the model produced no finite score")
    identity = _identity(card)
    return {
        "path": os.fspath(path),
        "model": identity.pop("model"),
        "status": STATUS_OK,
        "score": score,
        "lower_better": identity.pop("lower_better"),
        "per_second": [finite_or_none(s) for s in prediction.per_second],
        "error": None,
        "extra": jsonable(dict(prediction.extra)),
        **identity,
    }


def error_row(
    card: Any, path: str | os.PathLike[str], reason: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The row of a video that could not be scored: `reason` is one line."""
    identity = _identity(card)
    return {
        "path": os.fspath(path),
        "model": identity.pop("model"),
        "status": STATUS_ERROR,
        "score": None,
        "lower_better": identity.pop("lower_better"),
        "per_second": [],
        "error": reason,
        "extra": jsonable(extra or {}),
        **identity,
    }


def csv_row(row: dict[str, Any]) -> list[str]:
    """The CSV cells of a row in `CSV_COLUMNS` order: floats in full (shortest round-trip) precision,
    a missing score or second as an empty cell, per-second values separated by spaces."""

    def number(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    return [
        row["path"],
        row["model"],
        row["status"],
        number(row["score"]),
        "true" if row["lower_better"] else "false",
        " ".join(number(s) for s in row["per_second"]),
        " ".join(str(int(f)) for f in (row.get("extra") or {}).get("second_frames") or []),
        row["error"] or "",
    ]

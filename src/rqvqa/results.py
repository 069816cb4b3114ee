"""The result row: what every entry point (CLI, service, pipeline writers) reports for one video.

A row is a plain dict, JSON-ready:

- `path` (str), `model` (str), `lower_better` (bool);
- `status`: "ok" or "error";
- `score`: a finite float, or None on error;
- `per_second`: one finite float or None (a second the model could not measure) per second of video;
- `error`: None, or one line naming the file and the reason;
- `extra`: model details (dict; `traceback` is added here in debug mode);
- `weights`, `options`: which weights and options produced it (the instance card's, `rqvqa.registry.Card`);
- `video`: {"width", "height", "fps", "duration", "frames"} of the decoded stream, None when the file could
  not be opened;
- `diagnosis`: the artifact diagnosis of the frames the model decoded (`rqvqa.diagnosis`: {kind: {"level",
  "detected", "per_second"}}), None with `--no-diagnosis` or when it could not be computed;
- `notes`: short one-line remarks for the reader (`notes`): out of distribution, a score off the model's
  scale, an artifact the model is known to under-rate, a diagnosis of part of the video. Empty when none.

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

from rqvqa.diagnosis.thresholds import KINDS, detected_labels, underrated_by
from rqvqa.errors import RqvqaError, printable


@dataclass
class Prediction:
    """What a model says about one video."""

    score: float
    #: one score per second; None for a second the model could not measure (flat content, too small)
    per_second: list[float | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the decoded stream's facts and the artifact diagnosis (filled from the decode stage, `rqvqa.results`)
    video: dict[str, Any] | None = None
    diagnosis: dict[str, dict] | None = None


STATUS_OK = "ok"
STATUS_ERROR = "error"

#: the fields of `row["video"]`
VIDEO_FIELDS = ("width", "height", "fps", "duration", "frames")

#: column order of the CSV form of a row (`extra` is left out: it is nested; the frame each second's score
#: came from, `extra["second_frames"]`, has its own column so thumbnails can show it). The video's facts, the
#: detected issues, each diagnosed kind's level and the notes (one per line) follow; the per-second curves of
#: the diagnosis are JSONL/Parquet only.
CSV_COLUMNS = [
    "path",
    "model",
    "status",
    "score",
    "lower_better",
    "per_second",
    "second_frames",
    "error",
    *VIDEO_FIELDS,
    "issues",
    *KINDS,
    "notes",
]


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
    if path is not None:
        # the name, wherever it appears (decoders quote it), on one printable line
        name = os.fspath(path)
        text = text.replace(name, printable(name)) if name else text
        if not (isinstance(exc, RqvqaError) and exc.path is not None):
            text = f"{printable(name)}: {text}"
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
        return error_row(
            card, path, f"{os.fspath(path)}: the model produced no finite score", video=prediction.video
        )
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
        "video": jsonable(prediction.video),
        "diagnosis": jsonable(prediction.diagnosis),
        "notes": notes(card, score, prediction),
    }


def error_row(
    card: Any,
    path: str | os.PathLike[str],
    reason: str,
    extra: dict[str, Any] | None = None,
    video: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of a video that could not be scored: `reason` is one line; `video`: its facts when it could be
    opened."""
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
        "video": jsonable(video),
        "diagnosis": None,
        "notes": [],
    }


def _number_text(value: float) -> str:
    return f"{value:.4g}"


def notes(card: Any, score: float, prediction: Prediction) -> list[str]:
    """The reader's notes on one scored video (see the module docstring), each one short line."""
    out: list[str] = []
    extra = prediction.extra or {}
    if extra.get("ood"):
        feature = extra.get("ood_feature")
        where = f"feature {feature} is" if feature not in (None, "") else "its features are"
        out.append(f"out of distribution: {where} outside the training range; the score is a guess")
    low, high = card.score_range
    if (low is not None and score < low) or (high is not None and score > high):
        scale = "[{}, {}]".format(
            "-inf" if low is None else _number_text(low), "inf" if high is None else _number_text(high)
        )
        out.append(f"the score {_number_text(score)} is off the model's scale {scale}")
    diagnosis = prediction.diagnosis
    if diagnosis and low is not None and high is not None:
        middle = (low + high) / 2
        if (score < middle) if card.lower_better else (score > middle):
            for kind in underrated_by(card.name, diagnosis):
                out.append(f"{card.name} is known to under-rate {kind}, detected here (docs/diagnosis.md)")
    covered = max((len(e.get("per_second") or []) for e in (diagnosis or {}).values()), default=0)
    duration = (prediction.video or {}).get("duration")
    if diagnosis and duration and covered < math.floor(duration):
        seconds = _number_text(duration)
        out.append(f"the diagnosis covers the first {covered} s of {seconds} s (what the model decodes)")
    return out


def row_issues(row: dict[str, Any]) -> list[str]:
    """What the `issues` column shows: the detected artifacts, and "ood" when the model was out of its
    training distribution."""
    found = detected_labels(row.get("diagnosis"), strong=False)
    if (row.get("extra") or {}).get("ood"):
        found.append("ood")
    return found


def csv_row(row: dict[str, Any]) -> list[str]:
    """The CSV cells of a row in `CSV_COLUMNS` order: floats in full (shortest round-trip) precision,
    a missing score or second as an empty cell, per-second values separated by spaces."""

    return [
        row["path"],
        row["model"],
        row["status"],
        _cell(row["score"]),
        "true" if row["lower_better"] else "false",
        " ".join(_cell(s) for s in row["per_second"]),
        " ".join(str(int(f)) for f in (row.get("extra") or {}).get("second_frames") or []),
        row["error"] or "",
        *(_cell((row.get("video") or {}).get(name)) for name in VIDEO_FIELDS),
        ", ".join(row_issues(row)),
        *(_cell(((row.get("diagnosis") or {}).get(kind) or {}).get("level")) for kind in KINDS),
        "\n".join(row.get("notes") or []),
    ]


def _cell(value: Any) -> str:
    """A CSV cell: empty for None, integers as such, floats in full precision."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(float(value))

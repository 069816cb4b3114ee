"""Artifact diagnosis: why a video is bad (banding, blocking, blur, noise, exposure, stutter), per second.

- `Diagnoser(width, height, fps, frame_count=None, full_range=False)`: streaming; `add(index, time, luma)`
  for every decoded frame, `wants(index)` for the fully analysed ones, `result()`.
- `diagnose_file(path) -> dict`: one decode of the file through a `Diagnoser`.
- `Diagnosis`: the same as a passive decode product (`rqvqa.diagnosis.product`): the rows' diagnosis,
  computed in the decode the model runs.
- `rqvqa.diagnosis.measures`: the per-frame measures (pure functions of a luma plane).
- `KINDS`, `THRESHOLDS`, `SCALES`, `UNDERRATED`, `underrated_by`, `STRONG`, `detected_labels`:
  `rqvqa.diagnosis.thresholds`.

The result: {kind: {"level": float | None, "detected": bool, "per_second": [float | None, ...]}} for each
kind of `KINDS` (exposure also has "direction"). Methods, scales, thresholds and their calibration:
`docs/diagnosis.md`.
"""

from __future__ import annotations

import os

from rqvqa.diagnosis.product import Diagnosis, is_full_range
from rqvqa.diagnosis.stream import Diagnoser
from rqvqa.diagnosis.thresholds import (
    KINDS,
    SCALES,
    STRONG,
    THRESHOLDS,
    UNDERRATED,
    detected_labels,
    underrated_by,
)

__all__ = [
    "KINDS",
    "SCALES",
    "STRONG",
    "THRESHOLDS",
    "UNDERRATED",
    "Diagnoser",
    "Diagnosis",
    "detected_labels",
    "diagnose_file",
    "is_full_range",
    "underrated_by",
]


def diagnose_file(path: str | os.PathLike[str]) -> dict[str, dict]:
    """Diagnose one video file: one decode of every frame (`rqvqa.video.decode`) through the `Diagnosis`
    product. Raises `rqvqa.errors.VideoError` when the file cannot be read, `RuntimeError` when the
    diagnosis could not be computed."""
    from rqvqa.video.decode import DIAGNOSIS, decode

    result = decode(path, {DIAGNOSIS: Diagnosis(passive=False)})[DIAGNOSIS]
    if result is None:
        raise RuntimeError("the diagnosis could not be computed")
    return result

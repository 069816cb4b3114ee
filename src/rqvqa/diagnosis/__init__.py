"""Artifact diagnosis: why a video is bad (banding, blocking, blur, noise, exposure, stutter), per second.

- `Diagnoser(width, height, fps, frame_count=None, full_range=False)`: streaming; `add(index, time, luma)`
  for every decoded frame, `wants(index)` for the fully analysed ones, `result()`.
- `diagnose_file(path) -> dict`: one decode of the file through a `Diagnoser`.
- `rqvqa.diagnosis.measures`: the per-frame measures (pure functions of a luma plane).
- `KINDS`, `THRESHOLDS`, `SCALES`, `UNDERRATED`, `underrated_by`, `STRONG`, `detected_labels`:
  `rqvqa.diagnosis.thresholds`.

The result: {kind: {"level": float | None, "detected": bool, "per_second": [float | None, ...]}} for each
kind of `KINDS` (exposure also has "direction"). Methods, scales, thresholds and their calibration:
`docs/diagnosis.md`.
"""

from __future__ import annotations

import os

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
    "detected_labels",
    "diagnose_file",
    "is_full_range",
    "underrated_by",
]


def is_full_range(frame) -> bool:
    """Whether a PyAV video frame's luma uses the full 0-255 range: a JPEG `color_range` (2) or a yuvj format;
    not with an MPEG `color_range` (1); otherwise YUV is limited range (the video default) and gray or RGB
    (whose gray conversion is full range) full range."""
    name = frame.format.name
    color_range = int(getattr(frame, "color_range", 0) or 0)
    if color_range == 2 or name.startswith("yuvj"):
        return True
    if color_range == 1:
        return False
    return not name.startswith(("yuv", "nv"))


def diagnose_file(path: str | os.PathLike[str]) -> dict[str, dict]:
    """Diagnose one video file: decode every frame once (`rqvqa.video.reader`), feed a `Diagnoser`.
    Raises `rqvqa.errors.VideoError` when the file cannot be read."""
    import math

    from rqvqa.video.reader import decode_frames, frame_to_gray, probe

    info = probe(path)
    diagnoser: Diagnoser | None = None
    for index, frame in decode_frames(path):
        if diagnoser is None:
            diagnoser = Diagnoser(
                info.width,
                info.height,
                float(info.frame_rate),
                info.frame_count,
                full_range=is_full_range(frame),
            )
        time = frame.time
        diagnoser.add(
            index, None if time is None or not math.isfinite(time) else float(time), frame_to_gray(frame)
        )
    assert diagnoser is not None  # decode_frames raises when no frame decodes
    return diagnoser.result()

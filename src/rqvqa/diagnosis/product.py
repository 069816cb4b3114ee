"""The diagnosis as a decode product (`rqvqa.video.decode`): computed in the decode a model already runs.

`Diagnosis()` is *passive*: it reads every frame the decoder decodes for the model's own products and never
makes it decode more (a model that reads only the first 8 s, `--mode official`, gets the diagnosis of those
8 s; `docs/diagnosis.md`, "On the rows"). `Diagnosis(passive=False)` reads the whole video (`rqvqa diagnose`).
Its collector feeds a streaming `Diagnoser`; the spatial measures of the analysed frames (one a second) run
on the decode stage's thread pool. A frame or video the diagnosis cannot read leaves the product None: the
diagnosis never fails the video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import av

from rqvqa.diagnosis.stream import Diagnoser
from rqvqa.video.decode import Collector, Pool, Product, VideoSource
from rqvqa.video.reader import frame_to_gray


def is_full_range(frame: av.VideoFrame) -> bool:
    """Whether the luma `frame_to_gray` reads from a PyAV video frame uses the full 0-255 range: a JPEG
    `color_range` (2) or a yuvj format; not with an MPEG `color_range` (1); otherwise YUV is limited range
    (the video default), gray full range, and RGB limited (`frame_to_gray` gives it the Y plane an encoder
    would store: BT.601, limited range)."""
    name = frame.format.name
    color_range = int(getattr(frame, "color_range", 0) or 0)
    if color_range == 2 or name.startswith("yuvj"):
        return True
    if color_range == 1:
        return False
    return name.startswith("gray")


def _values_or_none(measure, *args) -> dict[str, float | None]:
    """`measure(*args)`, or no values when it fails (a failure in the pool would fail the whole decode)."""
    try:
        return measure(*args)
    except Exception:  # noqa: BLE001 - the diagnosis never fails the video
        return {}


@dataclass(frozen=True)
class Diagnosis(Product):
    """The artifact diagnosis of the frames decoded (see the module docstring)."""

    passive: bool = True

    def collector(self, source: VideoSource) -> Collector:
        return _DiagnosisCollector(source, self.passive)


class _DiagnosisCollector(Collector):
    def __init__(self, source: VideoSource, passive: bool):
        self.source, self.passive = source, passive
        self.diagnoser: Diagnoser | None = None
        self.broken = False

    def last(self) -> int | None:
        return None

    def wants(self, index: int) -> bool:
        return not self.broken

    def feed(self, index: int, frame: av.VideoFrame, pool: Pool) -> None:
        try:
            if self.diagnoser is None:
                info = self.source.info
                self.diagnoser = Diagnoser(
                    info.width,
                    info.height,
                    float(info.frame_rate),
                    info.frame_count,
                    full_range=is_full_range(frame),
                    submit=lambda fn, *args: pool.submit(_values_or_none, fn, *args),
                )
            time = frame.time
            time = None if time is None or not math.isfinite(time) else float(time)
            self.diagnoser.add(index, time, frame_to_gray(frame, copy=False))
        except Exception:  # noqa: BLE001 - the diagnosis is a by-product: it never fails the video
            self.broken = True

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> dict[str, Any] | None:
        if self.broken or self.diagnoser is None:
            return None
        try:
            return self.diagnoser.result()
        except Exception:  # noqa: BLE001 - as in feed
            return None

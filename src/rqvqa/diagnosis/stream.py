"""The streaming diagnoser: fed every decoded frame once, in decode order, it keeps only per-second sums.

Memory is bounded by the video's length in seconds (a few numbers a second, like the per-second curve it
returns) plus the raw frame differences of the last three seconds and one thumbnail: never a list of frames.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from rqvqa.diagnosis import measures
from rqvqa.diagnosis.thresholds import KINDS, THRESHOLDS

#: fully analysed frames per second of video (the spatial measures; stutter reads every frame)
ANALYSED_PER_SECOND = 1
#: a frame is a repeat when its picture changed by at most this share of the motion around it ...
FREEZE_SHARE = 0.1
#: ... and the motion around it (upper quartile of the frame differences over 3 s, grey levels on the
#: 1/8-size thumbnail) is at least this: a still scene is not a frozen one
MOTION_FLOOR = 0.5
#: an interval longer than this many nominal frame intervals is a gap (dropped or missing frames)
GAP_FACTOR = 1.5
#: intervals that set the nominal frame interval (their most common value, to 0.1 ms)
_NOMINAL_SAMPLE = 300

_SPATIAL = ("banding", "blocking", "blur", "noise", "exposure")


class Diagnoser:
    """Artifact diagnosis of one video from its decoded luma frames (`docs/diagnosis.md`).

    Call `add` for every decoded frame, in decode order; `wants(index)` says whether that frame is one of the
    fully analysed ones (one a second): for the others `add` reads only a 1/8-size subsample, so their luma
    may be a view of the decoder's buffer. `result()` gives {kind: {"level", "detected", "per_second"}}.

    `full_range`: the luma is full range (0-255: yuvj formats, `color_range` JPEG), which the exposure and
    banding measures need to know (`rqvqa.diagnosis.is_full_range(frame)` tells from a PyAV frame).

    `submit`: where the spatial measures of the fully analysed frames run (`submit(fn, *args) -> Future`, e.g.
    the decode stage's `rqvqa.video.decode.Pool.submit`); by default in the calling thread. They are pure
    functions of the frame, so the result does not depend on it; `result()` waits for them.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        frame_count: int | None = None,
        *,
        full_range: bool = False,
        submit: Callable[..., Future] | None = None,
    ):
        self.width, self.height = int(width), int(height)
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
        self.frame_count = frame_count
        self.full_range = bool(full_range)
        self._step = max(1, round(self.fps / ANALYSED_PER_SECOND))
        # a clip shorter than half a step still gets its middle frame analysed
        self._offset = self._step // 2
        if frame_count is not None and 0 < frame_count <= self._offset:
            self._offset = frame_count // 2
        self._submit = submit
        #: (second, measured values or their future), in decode order
        self._measured: list[tuple[int, Any]] = []
        self._analysed = 0
        self._fallback: tuple[int, np.ndarray] | None = None
        # spatial measures: kind -> second -> [sum, count]
        self._sums: dict[str, dict[int, list[float]]] = {k: defaultdict(lambda: [0.0, 0]) for k in _SPATIAL}
        self._under: list[float] = [0.0, 0]
        self._over: list[float] = [0.0, 0]
        # stutter
        self._t0: float | None = None
        self._last_time: float | None = None
        self._thumb: np.ndarray | None = None
        self._intervals: list[float] = []
        self._nominal: float | None = None
        self._pending: dict[int, list[tuple[float | None, float | None]]] = defaultdict(list)
        self._lost: dict[int, float] = {}
        self._covered: dict[int, float] = {}
        self._max_second = -1

    # ------------------------------------------------------------------------------------------ feeding

    def wants(self, index: int) -> bool:
        """Whether frame `index` is analysed fully (all frames must still be passed to `add`)."""
        return index % self._step == self._offset

    def add(self, index: int, time: float | None, luma: np.ndarray) -> None:
        """Feed decoded frame `index`: presentation `time` in seconds (None when unknown), uint8 luma,
        upright."""
        if time is None or not math.isfinite(time):
            time = (
                self._last_time + self._nominal_interval()
                if self._last_time is not None
                else index / self.fps
            )
        if self._t0 is None:
            self._t0 = time
        second = max(0, int(math.floor(time - self._t0 + 1e-6)))
        self._max_second = max(self._max_second, second)
        self._stutter_frame(second, time, luma)
        if self.wants(index):
            self._analyse(second, luma)
        elif self._analysed == 0 and (self.frame_count is None or self.frame_count <= self._offset):
            # the video may end before its first analysed frame: keep the latest one to analyse then
            self._fallback = (second, np.array(luma, copy=True))

    def _analyse(self, second: int, luma: np.ndarray) -> None:
        self._analysed += 1
        self._fallback = None
        if self._submit is None:
            self._measured.append((second, spatial_measures(luma, self.full_range)))
        else:
            self._measured.append((second, self._submit(spatial_measures, luma, self.full_range)))

    def _record(self, second: int, values: dict[str, float | None]) -> None:
        for key, acc in (("under", self._under), ("over", self._over)):
            if values.get(key) is not None:
                acc[0] += values[key]
                acc[1] += 1
        for kind in _SPATIAL:
            value = values.get(kind)
            if value is not None and math.isfinite(value):
                acc = self._sums[kind][second]
                acc[0] += value
                acc[1] += 1

    # ------------------------------------------------------------------------------------------ stutter

    def _nominal_interval(self) -> float:
        return self._nominal if self._nominal is not None else 1.0 / self.fps

    def _stutter_frame(self, second: int, time: float, luma: np.ndarray) -> None:
        thumb = measures.thumbnail(luma)
        diff = None if self._thumb is None else measures.frame_difference(self._thumb, thumb)
        interval = None if self._last_time is None else time - self._last_time
        self._thumb, self._last_time = thumb, time
        if interval is not None and self._nominal is None:
            self._intervals.append(interval)
            if len(self._intervals) >= _NOMINAL_SAMPLE:
                self._set_nominal()
        self._pending[second].append((diff, interval))
        # seconds two behind are final: their neighbours' motion is known
        for s in sorted(self._pending):
            if s <= second - 2 and s not in self._lost:
                self._finalise(s)

    def _set_nominal(self) -> None:
        positive = [round(i * 1e4) for i in self._intervals if i > 0]
        if positive:
            values, counts = np.unique(positive, return_counts=True)
            self._nominal = float(values[np.argmax(counts)]) / 1e4
        else:
            self._nominal = 1.0 / self.fps
        self._intervals = []

    def _motion(self, second: int) -> float:
        diffs = [d for d, _ in self._pending.get(second, ()) if d is not None]
        return float(np.percentile(diffs, 75)) if diffs else 0.0

    def _finalise(self, second: int) -> None:
        if self._nominal is None and self._intervals:
            self._set_nominal()
        nominal = self._nominal_interval()
        motion = max(self._motion(s) for s in (second - 1, second, second + 1))
        lost = covered = 0.0
        for diff, interval in self._pending[second]:
            shown = nominal if interval is None or interval <= 0 else interval
            covered += shown
            if interval is not None and interval <= 0:
                lost += nominal  # a repeated or backwards timestamp: the frame adds no time
                continue
            if interval is not None and interval > GAP_FACTOR * nominal:
                lost += interval - nominal  # a gap: frames missing
            if diff is not None and motion >= MOTION_FLOOR and diff <= FREEZE_SHARE * motion:
                lost += min(shown, nominal)  # a repeated picture amid motion
        self._lost[second] = lost
        self._covered[second] = covered
        # the raw values of the second before are no longer anyone's neighbour (this one's still are)
        self._pending.pop(second - 1, None)

    # ------------------------------------------------------------------------------------------- result

    def result(self) -> dict[str, dict]:
        """{kind: {"level": float | None, "detected": bool, "per_second": [float | None, ...]}} for every kind
        of `KINDS`; `exposure` also has "direction" ("under", "over" or None). None: not measurable."""
        if self._analysed == 0 and self._fallback is not None:
            second, luma = self._fallback
            self._analyse(second, luma)
        for second, values in self._measured:
            self._record(second, values.result() if isinstance(values, Future) else values)
        self._measured = []
        for s in sorted(k for k in self._pending if k not in self._lost):
            self._finalise(s)
        seconds = self._max_second + 1
        out: dict[str, dict] = {}
        for kind in KINDS:
            if kind == "stutter":
                per_second = [
                    100.0 * min(1.0, self._lost[s] / max(self._covered[s], 1e-9)) if s in self._lost else None
                    for s in range(seconds)
                ]
                covered = sum(self._covered.values())
                level = 100.0 * min(1.0, sum(self._lost.values()) / covered) if covered > 0 else None
            else:
                sums = self._sums[kind]
                per_second = [sums[s][0] / sums[s][1] if s in sums else None for s in range(seconds)]
                measured = [v for v in per_second if v is not None]
                level = float(np.mean(measured)) if measured else None
            per_second = [None if v is None or not math.isfinite(v) else float(v) for v in per_second]
            if level is not None and not math.isfinite(level):
                level = None
            out[kind] = {
                "level": level,
                "detected": bool(level is not None and level >= THRESHOLDS[kind]),
                "per_second": per_second,
            }
        exposure = out["exposure"]
        exposure["under"] = self._under[0] / self._under[1] if self._under[1] else None
        exposure["over"] = self._over[0] / self._over[1] if self._over[1] else None
        exposure["direction"] = None
        if exposure["under"] is not None:
            exposure["direction"] = "under" if exposure["under"] >= exposure["over"] else "over"
        return out


def spatial_measures(luma: np.ndarray, full_range: bool) -> dict[str, float | None]:
    """The five spatial measures of one fully analysed frame (`exposure`: the larger direction; `under` and
    `over` beside it), None where not measurable: a pure function, safe to run in any thread."""
    values: dict[str, float | None] = {
        "banding": measures.banding_index(luma, full_range),
        "blocking": measures.blockiness(luma),
        "blur": measures.blur_level(luma),
        "noise": measures.noise_sigma(luma),
    }
    exposure = measures.exposure(luma, full_range)
    if exposure is not None:
        values.update(
            exposure=max(exposure["under"], exposure["over"]), under=exposure["under"], over=exposure["over"]
        )
    return values

"""Small JPEG key frames of chosen seconds of a video, decoded on demand (the report's and the service page's
thumbnails). The frame shown for second ``s`` is the one the model scored for that second: every model that
gives per-second scores records it in its row (`extra["second_frames"]`: the first frame of each second for
the key-frame models, the protocol frame for BRISQUE/NIQE/lite-v1, the TLVQM frame for the VIDEVAL models)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import av

from rqvqa.video.decode import Collector, Pool, Product, VideoSource, decode
from rqvqa.video.reader import frame_to_rgb

#: longest side of a thumbnail in pixels, and its JPEG quality: a dozen of them stay under ~100 kB
THUMB_SIDE = 192
JPEG_QUALITY = 70


def scored_frames(row: dict, seconds: Iterable[int]) -> dict[int, int]:
    """Second -> index of the frame the model scored for it (seconds the row does not name are left out)."""
    frames = (row.get("extra") or {}).get("second_frames") or []
    return {s: int(frames[s]) for s in seconds if 0 <= s < len(frames) and frames[s] is not None}


@dataclass(frozen=True)
class Thumbnails(Product):
    """JPEG thumbnails of some frames, as a product of the one decode loop (`rqvqa.video.decode`)."""

    #: (second, frame index) pairs
    frames: tuple[tuple[int, int], ...]
    side: int = THUMB_SIDE

    def collector(self, source: VideoSource) -> Collector:
        return _ThumbnailCollector(self, source.info.rotation)


class _ThumbnailCollector(Collector):
    def __init__(self, spec: Thumbnails, rotation: int):
        self.spec, self.rotation = spec, rotation
        self.seconds: dict[int, list[int]] = {}
        for second, index in spec.frames:
            self.seconds.setdefault(index, []).append(second)
        self.jpegs: dict[int, Future] = {}

    def last(self) -> int:
        return max(self.seconds, default=-1)

    def wants(self, index: int) -> bool:
        return index in self.seconds

    def feed(self, index: int, frame: av.VideoFrame, pool: Pool) -> None:
        self.jpegs[index] = pool.submit(self._jpeg, frame_to_rgb(frame, self.rotation))

    def _jpeg(self, rgb) -> bytes:
        from PIL import Image

        image = Image.fromarray(rgb)
        image.thumbnail((self.spec.side, self.spec.side))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
        return buf.getvalue()

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> dict[int, bytes]:
        return {s: job.result() for index, job in self.jpegs.items() for s in self.seconds[index]}


def keyframe_jpegs(
    path: str | os.PathLike[str], frames: Mapping[int, int], side: int = THUMB_SIDE
) -> dict[int, bytes]:
    """Second -> JPEG bytes (upright, longest side `side`) of the frame `frames[second]` for each second asked
    for. Decodes the video once, up to the last frame needed. Raises VideoError for a file that cannot be
    read."""
    if not frames:
        return {}
    product = Thumbnails(tuple(sorted(frames.items())), side)
    return decode(path, {"thumbs": product})["thumbs"]


def data_uri(jpeg: bytes) -> str:
    """A ``data:`` URI of JPEG bytes, to inline an image in HTML."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


#: seconds closer than this share of the plotted scale to the best second are not "worse": a 0.0002 wobble
#: on a 1-5 scale (or three identical seconds) has no worst second
SAME_SHARE = 0.01
#: with no closed score range on the card, the y axis spans at least this share of the score's size (and 1.0
#: at least around 0), so that a tiny wobble does not fill the plot
MIN_SPAN_SHARE = 0.2


@dataclass(frozen=True)
class Axis:
    """The y range a per-second curve is drawn on, and how it was chosen (said on the plot)."""

    low: float
    high: float
    label: str

    @property
    def same(self) -> float:
        """Differences smaller than this are not differences (`SAME_SHARE` of the plotted span)."""
        return SAME_SHARE * (self.high - self.low)


def score_axis(values: Iterable[float | None], score_range: Sequence[float | None] | None = None) -> Axis:
    """The model's scale when its card gives both ends (widened to any value outside it), else a span of at
    least `MIN_SPAN_SHARE` of the scores' size around them (cut at a known end)."""
    known = [float(v) for v in values if v is not None]
    low_end, high_end = (list(score_range) + [None, None])[:2] if score_range else (None, None)
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    if low_end is not None and high_end is not None and high_end > low_end:
        return Axis(
            min(lo, low_end), max(hi, high_end), f"y axis: the model's scale, {low_end:g} to {high_end:g}"
        )
    span = max(hi - lo, MIN_SPAN_SHARE * max(abs(lo), abs(hi), 1.0))
    middle = (lo + hi) / 2
    low, high = middle - span / 2, middle + span / 2
    if low_end is not None and low < low_end <= lo:
        low, high = low_end, low_end + span
    if high_end is not None and high > high_end >= hi:
        low, high = high_end - span, high_end
    return Axis(low, high, f"y axis: a span of at least {MIN_SPAN_SHARE:.0%} of the score")


def worst_seconds(
    per_second: list[float | None],
    lower_better: bool,
    n: int,
    score_range: Sequence[float | None] | None = None,
) -> list[int]:
    """The `n` worst scored seconds (indices), worst first; seconds without a score are skipped, and so are
    seconds within `Axis.same` of the best one (identical seconds: no worst second)."""
    scored = [(s, k) for k, s in enumerate(per_second) if s is not None]
    if not scored:
        return []
    same = score_axis(per_second, score_range).same
    best = min(s for s, _ in scored) if lower_better else max(s for s, _ in scored)
    scored = [(s, k) for s, k in scored if abs(s - best) > same]
    scored.sort(key=lambda sk: (-sk[0], sk[1]) if lower_better else (sk[0], sk[1]))
    return [k for _, k in scored[:n]]

"""Small JPEG key frames of chosen seconds of a video, decoded on demand (the report's and the service page's
thumbnails). The frame shown for second ``s`` is the one the model scored for that second: every model that
gives per-second scores records it in its row (`extra["second_frames"]`: the first frame of each second for
the key-frame models, the protocol frame for BRISQUE/NIQE/lite-v1, the TLVQM frame for the VIDEVAL models)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Mapping
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


def worst_seconds(per_second: list[float | None], lower_better: bool, n: int) -> list[int]:
    """The `n` worst scored seconds (indices), worst first; seconds without a score are skipped."""
    scored = [(s, k) for k, s in enumerate(per_second) if s is not None]
    scored.sort(key=lambda sk: (-sk[0], sk[1]) if lower_better else (sk[0], sk[1]))
    return [k for _, k in scored[:n]]

"""Small JPEG key frames of chosen seconds of a video, decoded on demand (the report's and the service page's
thumbnails). The frame of second ``s`` is the one at ``s + 0.5`` s, the middle of the second, which is the
frame the one-per-second models score."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable

from rqvqa.video.reader import decode_frames, frame_to_rgb, probe

#: longest side of a thumbnail in pixels, and its JPEG quality: a dozen of them stay under ~100 kB
THUMB_SIDE = 192
JPEG_QUALITY = 70


def frame_of_second(second: int, fps: float, frame_count: int) -> int:
    """Index of the frame shown in the middle of `second`, within the video."""
    return max(0, min(int((second + 0.5) * fps), frame_count - 1))


def keyframe_jpegs(
    path: str | os.PathLike[str], seconds: Iterable[int], side: int = THUMB_SIDE
) -> dict[int, bytes]:
    """Second -> JPEG bytes (upright, longest side `side`) for each second asked for. Decodes the video once,
    up to the last frame needed. Raises VideoError for a file that cannot be read."""
    from PIL import Image

    info = probe(path)
    wanted: dict[int, list[int]] = {}
    for s in sorted(set(seconds)):
        wanted.setdefault(frame_of_second(s, float(info.frame_rate), info.frame_count), []).append(s)
    out: dict[int, bytes] = {}
    if not wanted:
        return out
    last = max(wanted)
    for index, frame in decode_frames(path):
        if index in wanted:
            image = Image.fromarray(frame_to_rgb(frame, info.rotation))
            image.thumbnail((side, side))
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=JPEG_QUALITY)
            for s in wanted[index]:
                out[s] = buf.getvalue()
        if index >= last:
            break
    return out


def data_uri(jpeg: bytes) -> str:
    """A ``data:`` URI of JPEG bytes, to inline an image in HTML."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def worst_seconds(per_second: list[float | None], lower_better: bool, n: int) -> list[int]:
    """The `n` worst scored seconds (indices), worst first; seconds without a score are skipped."""
    scored = [(s, k) for k, s in enumerate(per_second) if s is not None]
    scored.sort(key=lambda sk: (-sk[0], sk[1]) if lower_better else (sk[0], sk[1]))
    return [k for _, k in scored[:n]]

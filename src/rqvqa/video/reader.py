"""Probe and decode videos with PyAV (FFmpeg), frames upright and uint8.

Public API:

- `VideoInfo`: what `probe` learns about a file (rate as a `Fraction`, frame count, displayed size...).
- `probe(path) -> VideoInfo`.
- `decode_frames(path) -> Iterator[(index, av.VideoFrame)]`: the raw decoded frames in output order (the index
  counts decoded frames, like OpenCV's sequential reads); undecodable packets are skipped; frames after a
  mid-stream size change are scaled to the first frame's size (`SizeChanges` counts them).
- `iter_frames(path, fmt="rgb24" | "gray") -> Iterator[(index, ndarray)]`: the same frames converted, upright.
- `frame_to_rgb(frame, rotation)`, `frame_to_gray(frame, rotation)`: the conversions `iter_frames` applies.

Every failure raises `rqvqa.errors.VideoError` whose message names the file and the reason.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import stat
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from rqvqa.errors import ConfigError, VideoError
from rqvqa.video.containers import check_index

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class VideoInfo:
    """Static facts about one video file, as displayed (rotation applied to width/height)."""

    path: str
    #: average frame rate (what OpenCV's CAP_PROP_FPS reports: FFmpeg's avg_frame_rate)
    frame_rate: Fraction
    #: number of frames, counted by demuxing the video stream's packets (never trusted from the header)
    frame_count: int
    #: seconds (stream duration, else container duration, else frame_count / frame_rate)
    duration: float
    #: displayed width and height (after the display-matrix rotation)
    width: int
    height: int
    #: counter-clockwise rotation in degrees applied to decoded frames to show them upright (0, 90, 180, 270)
    rotation: int
    pix_fmt: str
    bit_depth: int
    codec: str
    #: frame count stored in the container header (None when absent); may disagree with `frame_count`
    container_frame_count: int | None = None

    @property
    def fps_int(self) -> int:
        """The official code's integer rate: Python `int(round(fps))` (half to even; 29.97 -> 30)."""
        return int(round(float(self.frame_rate)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_rate"] = f"{self.frame_rate.numerator}/{self.frame_rate.denominator}"
        d["fps"] = float(self.frame_rate)
        d["fps_int"] = self.fps_int
        return d


@dataclass(frozen=True)
class Limits:
    """What a video may claim before any frame is decoded. A file over a limit is refused with a one-line
    `VideoError` after reading its headers only, so a few-KB file claiming 16384x8192 frames or a year of
    video costs milliseconds, not gigabytes. Change them for a block with `video_limits(...)`."""

    #: frame width x height (default 8K UHD, 7680x4320)
    max_pixels: int = 7680 * 4320
    #: longest side in pixels (FFmpeg's own H.264/HEVC maxima are 8192-16384)
    max_side: int = 16384
    #: claimed or counted duration in seconds (default 24 h)
    max_seconds: float = 24 * 3600.0
    #: claimed frame rate in frames per second
    max_frame_rate: float = 1000.0
    #: frames a stream may claim or hold (24 h at 115 fps); bounds the memory of the packet index
    max_frames: int = 10_000_000


_LIMITS: ContextVar[Limits | None] = ContextVar("rqvqa_video_limits", default=None)


def current_limits() -> Limits:
    return _LIMITS.get() or Limits()


@contextmanager
def video_limits(**changes: float | int | None) -> Iterator[Limits]:
    """Use changed limits (e.g. `max_pixels=...`; None keeps a limit as it is) inside a `with` block."""
    limits = replace(current_limits(), **{k: v for k, v in changes.items() if v is not None})
    if limits.max_pixels < 1:
        raise ConfigError("the pixel budget must be at least 1 pixel")
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def parse_pixels(text: str) -> int:
    """A pixel budget from the command line: a number of pixels (`33177600`) or a size (`7680x4320`)."""
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            pixels = int(w) * int(h)
        else:
            pixels = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a pixel budget: {text!r} (e.g. 7680x4320 or 33177600)"
        ) from None
    if pixels < 1:
        raise argparse.ArgumentTypeError("the pixel budget must be at least 1 pixel")
    return pixels


_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _check_path(path: PathLike) -> Path:
    """The path of a readable regular file, else a `VideoError` that says what is wrong with it."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise VideoError(_stat_reason(p, e), p) from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoError("is a directory, not a video file", p)
    if not stat.S_ISREG(st.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "a special file")
        raise VideoError(f"is {kind}, not a regular video file", p)
    if not os.access(p, os.R_OK):
        raise VideoError("permission denied", p)
    if st.st_size == 0:
        # files under /proc or /sys report 0 bytes but have content
        try:
            with open(p, "rb") as handle:
                has_content = bool(handle.read(1))
        except OSError as e:
            raise VideoError(f"cannot read ({e.strerror or e})", p) from None
        if has_content:
            raise VideoError(
                "a virtual file (reports 0 bytes but has content, as /proc files do), not a video", p
            )
        raise VideoError("empty file (0 bytes)", p)
    return p


def _stat_reason(p: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno == errno.ENOENT:
        try:
            return f"broken symbolic link (to {os.readlink(p)})"
        except OSError:  # not a link: the file itself is missing
            return "file not found"
    if e.errno == errno.EACCES:
        return "permission denied (a folder on the path cannot be searched)"
    if e.errno == errno.ENOTDIR:
        return "file not found (a part of the path is not a folder)"
    if e.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot access ({e.strerror or e})"


def _signature(p: Path) -> str | None:
    """The container a file's first bytes announce (None: not one of the common video containers)."""
    try:
        with open(p, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def _open(p: Path) -> av.container.InputContainer:
    try:
        # FFmpeg builds a container's sample index while opening it: refuse a forged one first
        check_index(p, current_limits().max_frames)
    except OSError as e:
        raise VideoError(f"cannot read ({e.strerror or e})", p) from None
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as e:
        kind = _signature(p)
        if kind is not None:
            # it starts like a video container, so its header is what is broken
            raise VideoError(
                f"truncated or damaged {kind} file: its header or index does not parse ({_ffmpeg_reason(e)})",
                p,
            ) from None
        raise VideoError(f"not a readable video file ({_ffmpeg_reason(e)})", p) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise VideoError(f"cannot open ({e})", p) from None


def _ffmpeg_reason(e: Exception) -> str:
    # PyAV messages repeat the file name; keep only FFmpeg's reason so the message stays one short line.
    return str(getattr(e, "strerror", None) or e).splitlines()[0]


def _video_stream(container: av.container.InputContainer, p: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        if not kinds or kinds == ["data"]:
            # a stream whose kind the header does not say: the header was cut or damaged
            raise VideoError("no video stream found (the header is truncated or damaged)", p)
        raise VideoError(f"no video stream (only {', '.join(kinds)})", p)
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoError("the video stream has no decoder (unknown codec, or a damaged header)", p)
    _check_claims(container, stream, p)
    # Frame threading gives the largest decode speed-up; AUTO lets FFmpeg pick frame or slice threads.
    stream.thread_type = "AUTO"
    return stream


def check_frame_size(width: int, height: int, p: PathLike, what: str = "frames") -> None:
    """Refuse a frame size over the pixel budget (`Limits`) with a one-line `VideoError`."""
    limits = current_limits()
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise VideoError(
            f"{what} {width}x{height} ({width * height} pixels), over the limit of {limits.max_pixels} "
            f"pixels and {limits.max_side} per side (--max-pixels to change)",
            p,
        )


def _check_claims(container: av.container.InputContainer, stream, p: Path) -> None:
    """Refuse, from the headers alone, a stream claiming an absurd size, duration, rate or frame count."""
    limits = current_limits()
    ctx = stream.codec_context
    if ctx.width and ctx.height:
        check_frame_size(ctx.width, ctx.height, p, "the header claims frames")
    durations = [container.duration / av.time_base if container.duration is not None else 0.0]
    if stream.duration is not None and stream.time_base is not None:
        durations.append(float(stream.duration * stream.time_base))
    if max(durations) > limits.max_seconds:
        raise VideoError(
            f"the header claims a duration of {max(durations):.0f} s, "
            f"over the limit of {limits.max_seconds:.0f} s",
            p,
        )
    rate = stream.average_rate or stream.guessed_rate
    if rate is not None and float(rate) > limits.max_frame_rate:
        raise VideoError(
            f"the header claims {float(rate):.6g} frames per second, "
            f"over the limit of {limits.max_frame_rate:g}",
            p,
        )
    if (stream.frames or 0) > limits.max_frames:
        raise VideoError(
            f"the header claims {stream.frames} frames, over the limit of {limits.max_frames}", p
        )


def _bit_depth(fmt: av.VideoFormat | None) -> int:
    if fmt is None or not fmt.components:
        return 8
    return max(c.bits for c in fmt.components)


def _normalise_rotation(degrees: float) -> int:
    return int(round(degrees / 90.0)) % 4 * 90


def _frame_rate(stream: av.video.stream.VideoStream, p: Path) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate.numerator, rate.denominator)
    raise VideoError("no frame rate in the video stream", p)


def _decoded(container: av.container.InputContainer, stream, path: Path) -> Iterator[av.VideoFrame]:
    """Decode `stream`, skipping packets the decoder rejects; a demux error ends the stream (truncation).
    A frame over the pixel budget raises `VideoError`."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError:
            # Truncated or garbage data: keep what was decoded, then flush the decoder below.
            break
        if packet.size == 0 and packet.dts is None:
            continue
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        for frame in frames:
            yield _within_limits(frame, path)
    try:
        for frame in stream.decode(None):
            yield _within_limits(frame, path)
    except av.error.FFmpegError:
        return


def _within_limits(frame: av.VideoFrame, p: Path) -> av.VideoFrame:
    # headers may omit the size or the stream may change size midway: hold every decoded frame to the budget
    check_frame_size(frame.width, frame.height, p)
    return frame


def probe(path: PathLike) -> VideoInfo:
    """Read a video's facts. Counts frames by demuxing; decodes one frame to read the rotation and check
    that the stream decodes at all."""
    p = _check_path(path)
    with _open(p) as container:
        stream = _video_stream(container, p)
        rate = _frame_rate(stream, p)
        header_count = stream.frames or None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = math.nan
        first = next(_decoded(container, stream, p), None)
        if first is None:
            raise VideoError("no decodable video frames", p)
        rotation = _normalise_rotation(first.rotation)
        pix_fmt = first.format.name
        bit_depth = _bit_depth(first.format)
        coded_w, coded_h = first.width, first.height
        codec = stream.codec_context.name
    # at least the frame decoded above (a stream whose packets all report size 0 is still a video)
    count = max(len(video_packets(p).sizes), 1)
    if math.isnan(duration) or duration <= 0:
        duration = count / float(rate)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoInfo(
        path=str(p),
        frame_rate=rate,
        frame_count=count,
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth,
        codec=codec,
        container_frame_count=header_count,
    )


@dataclass(frozen=True)
class Packets:
    """Presentation time and size of every non-empty packet of the video stream, in demux order."""

    #: seconds (pts x time base); NaN for a packet without a timestamp
    times: np.ndarray
    #: bytes
    sizes: np.ndarray


def video_packets(path: PathLike) -> Packets:
    """Demux the video stream without decoding (cheap: no pixel data is read). The frame count comes from
    here because headers lie (truncated files, VFR, missing counts); the coded bit budget too."""
    p = _check_path(path)
    limit = current_limits().max_frames
    times, sizes = array("d"), array("q")  # 16 bytes a packet, bounded by the frame limit
    with _open(p) as container:
        stream = _video_stream(container, p)
        try:
            for packet in container.demux(stream):
                if packet.size > 0:
                    pts = packet.pts
                    times.append(math.nan if pts is None else float(pts * packet.time_base))
                    sizes.append(packet.size)
                    if len(sizes) > limit:
                        raise VideoError(f"more than {limit} frames, over the limit", p)
        except av.error.FFmpegError:
            # a corrupt tail: keep what demuxed before it
            pass
    return Packets(np.frombuffer(times, dtype=np.float64).copy(), np.frombuffer(sizes, dtype=np.int64).copy())


@dataclass
class SizeChanges:
    """Frames decoded at another size than the first frame's (a stream whose frame size changes midway, e.g.
    two clips joined), which `decode_frames` scales to the first frame's size."""

    #: (width, height) of the first frame
    first: tuple[int, int] | None = None
    #: frames scaled, and the sizes they were decoded at
    count: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)

    def note(self) -> str | None:
        """One line for a row's `extra` (None when the size never changed)."""
        if not self.count or self.first is None:
            return None
        shown = sorted(self.sizes)
        sizes = ", ".join(f"{w}x{h}" for w, h in shown[:3]) + (
            f" and {len(shown) - 3} more" if shown[3:] else ""
        )
        return (
            f"the frame size changes mid-stream: {self.count} frame(s) decoded at {sizes} were scaled to the "
            f"first frame's {self.first[0]}x{self.first[1]}"
        )


def decode_frames(
    path: PathLike, changes: SizeChanges | None = None, threaded: bool = True
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (index, frame) for every decodable frame, in output (presentation) order, with threaded decoding
    (`threaded=False`: one FFmpeg thread, the least CPU per frame, for callers that keep the cores busy with
    their own work on the frames).

    The index counts successfully decoded frames, as the official code's sequential OpenCV reads do. Every
    frame has the first frame's size: frames decoded at another size are scaled to it (bilinear, swscale),
    and counted in `changes`. Raises VideoError if the file cannot be opened or not a single frame decodes.
    """
    p = _check_path(path)
    changes = changes if changes is not None else SizeChanges()
    with _open(p) as container:
        stream = _video_stream(container, p)
        if not threaded:
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        index = -1
        for index, frame in enumerate(_decoded(container, stream, p)):
            size = (frame.width, frame.height)
            if changes.first is None:
                changes.first = size
            elif size != changes.first:
                changes.count += 1
                changes.sizes.add(size)
                frame = frame.reformat(width=changes.first[0], height=changes.first[1])
            yield index, frame
        if index < 0:
            raise VideoError("no decodable video frames", p)


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    if rotation % 360 == 0:
        return array
    # np.rot90 turns counter-clockwise for positive k, the display-matrix convention.
    return np.ascontiguousarray(np.rot90(array, k=rotation // 90))


def frame_rotation(frame: av.VideoFrame) -> int:
    return _normalise_rotation(frame.rotation)


def frame_to_rgb(frame: av.VideoFrame, rotation: int | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3), upright. swscale converts (10-bit is scaled, not truncated)."""
    rot = frame_rotation(frame) if rotation is None else rotation
    return _upright(frame.to_ndarray(format="rgb24"), rot)


def frame_to_gray(frame: av.VideoFrame, rotation: int | None = None, copy: bool = True) -> np.ndarray:
    """uint8 luma (H, W), upright: the decoded Y plane as stored (limited range stays limited).

    High-bit-depth YUV is first converted to 8-bit yuv420p by swscale. Frames without a luma plane (RGB
    codecs, frames given in memory) get the Y plane an encoder would store for them (swscale's BT.601
    limited-range conversion to yuv420p), so the luma models read them on the same scale as YUV video.
    `copy=False`: a read-only view of the frame's own plane where no conversion or turn is needed (it keeps
    the decoded frame alive, and saves a copy of every frame a caller only reads).
    """
    rot = frame_rotation(frame) if rotation is None else rotation
    fmt = frame.format
    if not fmt.name.startswith(("yuv", "nv", "gray")) or _bit_depth(fmt) > 8:
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    if copy:
        y = np.array(y)
    else:
        y.flags.writeable = False  # the decoder's own frame: nobody writes into it
    return _upright(y, rot)


def iter_frames(path: PathLike, fmt: str = "rgb24") -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, uint8 array) per decoded frame, upright: (H, W, 3) "rgb24" or (H, W) luma "gray"."""
    if fmt not in ("rgb24", "gray"):
        raise ValueError(f"fmt must be 'rgb24' or 'gray', not {fmt!r}")
    convert = frame_to_rgb if fmt == "rgb24" else frame_to_gray
    for index, frame in decode_frames(path):
        yield index, convert(frame)

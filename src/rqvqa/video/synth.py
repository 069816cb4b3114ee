"""Generate test videos with PyAV, so examples and tests need no download.

The content is a moving, textured scene (gradients, a bouncing disc, fine stripes) so that blur, noise and
compression change measurable image statistics; `blur`, `noise` and `crf` grade the quality.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def render_frame(i: int, width: int, height: int, fps: float, seed: int = 0) -> np.ndarray:
    """Frame `i` of the synthetic scene, uint8 RGB (height, width, 3). Deterministic for (i, seed)."""
    t = i / max(fps, 1e-6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 0.7
    r = 127 + 100 * np.sin(2 * np.pi * (xx / max(width, 1) + 0.15 * t + phase))
    g = 127 + 100 * np.sin(2 * np.pi * (yy / max(height, 1) - 0.1 * t + 0.3 * phase))
    stripes = 40 * np.sign(np.sin(2 * np.pi * (xx + yy) / 6.0 + 3 * t))
    b = 127 + stripes
    cx = width * (0.5 + 0.35 * np.sin(2 * np.pi * 0.25 * t + phase))
    cy = height * (0.5 + 0.35 * np.cos(2 * np.pi * 0.2 * t + phase))
    rad = 0.18 * min(width, height)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < rad**2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = (240.0, 230.0 - 20 * (seed % 5), 40.0 + 30 * (seed % 4))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _degrade(frame: np.ndarray, blur: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    out = frame.astype(np.float32)
    if blur > 0:
        from scipy.ndimage import gaussian_filter

        out = gaussian_filter(out, sigma=(blur, blur, 0))
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_video(
    path: str | Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: float | Fraction = 30,
    n_frames: int = 60,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int | None = 23,
    blur: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    rotation: int = 0,
    frame_times: Sequence[float] | None = None,
    faststart: bool = False,
) -> Path:
    """Write a synthetic clip and return its path. `fps` may be fractional (e.g. Fraction(30000, 1001)).

    `rotation`: display-matrix rotation in degrees counter-clockwise (a portrait phone clip stored landscape
    has 90 or -90); the pixels are written as given, players rotate them. `frame_times`: presentation time
    of each frame in seconds (variable frame rate; overrides `n_frames`, `fps` stays the nominal rate).
    `faststart`: MP4 index at the front, so a truncated file still opens (as streamed phone videos do).
    Odd sizes need a 4:4:4 `pix_fmt` with libx264. The same arguments give the same bytes (`write_frames`).
    """
    rate = float(Fraction(fps).limit_denominator(100000))
    rng = np.random.default_rng(seed)
    count = len(frame_times) if frame_times is not None else n_frames
    frames = (_degrade(render_frame(i, width, height, rate, seed), blur, noise, rng) for i in range(count))
    return write_frames(
        path,
        frames,
        fps=fps,
        codec=codec,
        pix_fmt=pix_fmt,
        crf=crf,
        rotation=rotation,
        frame_times=frame_times,
        faststart=faststart,
    )


def write_frames(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float | Fraction = 30,
    codec: str = "ffv1",
    pix_fmt: str | None = None,
    crf: int | None = None,
    rotation: int = 0,
    frame_times: Sequence[float] | None = None,
    faststart: bool = False,
    fragmented: bool = False,
) -> Path:
    """Encode uint8 RGB frames (H, W, 3), all of one size, to `path`; the default is lossless FFV1 (use a
    .mkv name). See `make_video` for `rotation`, `frame_times`, `faststart`; `fragmented`: fragmented MP4
    (an empty `moov`, then a `moof` and an `mdat` per key frame).

    Deterministic (same bytes, so same decoded pixels, run to run): encoders run single-threaded, and libx264
    without its macroblock tree (`mbtree=0`), which alone made identical input frames encode differently from
    one process to the next, even with one thread (grades of `make_video` differed in 9 of 10 clips).
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(100000)
    container_options = {"movflags": "faststart"} if faststart else {}
    if fragmented:
        container_options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(str(path), mode="w", options=container_options) as container:
        stream = None
        for i, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt or ("yuv420p" if codec == "libx264" else "bgr0")
                stream.thread_count = 1
                if rotation:
                    stream.set_display_rotation(rotation)
                if frame_times is not None:
                    # millisecond timestamps so irregular frame spacing survives encoding
                    stream.codec_context.time_base = Fraction(1, 1000)
                options = {"threads": "1"}
                if crf is not None:
                    options["crf"] = str(crf)
                if codec == "libx264":
                    options["x264-params"] = "mbtree=0"
                if codec == "libx265":
                    options["x265-params"] = "log-level=error:pools=1:frame-threads=1"
                stream.options = options
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            # explicit timestamps: libx264's rate control reads them
            if frame_times is not None:
                vf.pts, vf.time_base = round(frame_times[i] * 1000), Fraction(1, 1000)
            else:
                vf.pts, vf.time_base = i, 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frame to write")
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio_only(path: str | Path, seconds: float = 1.0, sample_rate: int = 44100) -> Path:
    """Write a file with one AAC audio stream and no video stream (e.g. `voice.mp4`)."""
    path = Path(path)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate_file(src: str | Path, dst: str | Path, keep_fraction: float) -> Path:
    """Copy the first `keep_fraction` of `src`'s bytes to `dst` (an interrupted download or copy)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def corrupt_file(src: str | Path, dst: str | Path, start_fraction: float, length: int, seed: int = 0) -> Path:
    """Copy `src` to `dst` with `length` bytes of random garbage from `start_fraction` of the file on (a
    damaged sector or a broken transfer in the middle of the stream)."""
    data = bytearray(Path(src).read_bytes())
    start = int(len(data) * start_fraction)
    stop = min(start + length, len(data))
    data[start:stop] = np.random.default_rng(seed).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, *payload: bytes, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)


def write_raw_mov(
    path: str | Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 10,
    claimed_samples: int | None = None,
    repeats: int = 0,
    compressed_header: bool = False,
) -> Path:
    """Write uint8 RGB frames (all of one size) as uncompressed 24-bit QuickTime (`raw `), every box written
    here. `claimed_samples` forges the sample tables (time-to-sample, sample-to-chunk and sample-size counts)
    to claim that many samples while the file holds `len(frames)`: an index bomb, a few KB that make FFmpeg
    build a sample index of that many entries when it opens the file. `repeats`: an edit list of that many
    edits, each showing the whole clip (FFmpeg indexes every sample once per edit). `compressed_header`: the
    movie header zlib-compressed (`cmov`, old QuickTime), after the sample data."""
    height, width = frames[0].shape[:2]
    count = len(frames) if claimed_samples is None else claimed_samples
    sample = width * height * 3
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    header = struct.pack(">5IH10x", 0, 0, fps, len(frames), 0x10000, 0x100)
    mvhd = _full_box(b"mvhd", header, matrix, bytes(28))
    tkhd = _full_box(
        b"tkhd", struct.pack(">5I8x4H", 0, 0, 1, 0, len(frames), 0, 0, 0, 0), matrix,
        struct.pack(">2I", width << 16, height << 16), flags=3,
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", struct.pack(">4I2H", 0, 0, fps, len(frames), 0, 0))
    hdlr = _full_box(b"hdlr", b"mhlrvide", bytes(12), b"\x00")
    entry = _box(
        b"raw ", bytes(6), struct.pack(">HHH4s2I2H2IIH", 1, 0, 0, b"rqvq", 0, 0, width, height, 72 << 16,
                                       72 << 16, 0, 1), bytes(32), struct.pack(">Hh", 24, -1),
    )  # fmt: skip
    stsd = _full_box(b"stsd", struct.pack(">I", 1), entry)
    stts = _full_box(b"stts", struct.pack(">3I", 1, count, 1))
    stsc = _full_box(b"stsc", struct.pack(">4I", 1, 1, count, 1))
    stsz = _full_box(b"stsz", struct.pack(">2I", sample, count))
    dinf = _box(b"dinf", _full_box(b"dref", struct.pack(">I", 1), _full_box(b"alis", flags=1)))
    vmhd = _full_box(b"vmhd", bytes(8), flags=1)

    edit = struct.pack(">Iii", len(frames), 0, 0x10000)  # duration (movie ticks), media start, rate 1.0
    edts = _box(b"edts", _full_box(b"elst", struct.pack(">I", repeats), edit * repeats)) if repeats else b""

    def moov(chunk_offset: int) -> bytes:
        stco = _full_box(b"stco", struct.pack(">2I", 1, chunk_offset))
        stbl = _box(b"stbl", stsd, stts, stsc, stsz, stco)
        mdia = _box(b"mdia", mdhd, hdlr, _box(b"minf", vmhd, dinf, stbl))
        return _box(b"moov", mvhd, _box(b"trak", tkhd, edts, mdia))

    ftyp = _box(b"ftyp", b"qt  ", struct.pack(">I", 0x200), b"qt  ")
    data = b"".join(np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in frames)
    path = Path(path)
    if compressed_header:
        movie = moov(len(ftyp) + 8)
        packed = _box(b"cmvd", struct.pack(">I", len(movie)), zlib.compress(movie))
        path.write_bytes(
            ftyp + _box(b"mdat", data) + _box(b"moov", _box(b"cmov", _box(b"dcom", b"zlib"), packed))
        )
    else:
        path.write_bytes(ftyp + moov(len(ftyp + moov(0)) + 8) + _box(b"mdat", data))
    return path


def forge_fragment_run(src: str | Path, dst: str | Path, claimed_samples: int) -> Path:
    """Copy a fragmented MP4 (`write_frames(..., fragmented=True)`) to `dst` with its first fragment's sample
    run (`trun`) claiming `claimed_samples` samples and no per-sample fields: an index bomb as small."""
    data = Path(src).read_bytes()
    at = data.index(b"trun") + 4  # the first `trun` box precedes every sample's bytes
    dst = Path(dst)
    dst.write_bytes(data[:at] + struct.pack(">II", 0x000001, claimed_samples) + data[at + 8 :])
    return dst

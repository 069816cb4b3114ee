"""The decode stage: one streaming decode per video, feeding every product a model asks for.

A model declares what it reads from a video as named **products** (`Product`: key frames, 384p frames, chunks,
fragments, VIDEVAL frame features, the protocol frames of BRISQUE/NIQE, the coded bit budget...). `decode`
opens the video once, starts one **collector** per product, and hands each decoded frame to the collectors
that want it; collectors push their heavy per-frame work (conversion, resizing, frame features) to one bounded
thread pool shared by all of them (`Pool`), so decoding and that work overlap while at most a few frames are
in flight (memory stays bounded whatever the video). Decoding stops after the last frame any collector needs.

Where the frames come from is a `VideoSource`: a file (`FileSource`, probed and decoded with PyAV) or frames
already in memory (`ArraySource`, for `Predictor.predict_frames`: no temporary file, no re-encode).

`Decoder` is the picklable callable a collection engine runs in its CPU workers: video in, `Decoded` out (the
products, the video's facts and what decoding cost).
"""

from __future__ import annotations

import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from rqvqa.errors import InputError, StoppedError
from rqvqa.results import Prediction
from rqvqa.video.allocator import tune_allocator
from rqvqa.video.reader import (
    Packets,
    SizeChanges,
    VideoInfo,
    check_frame_size,
    decode_frames,
    probe,
    video_packets,
)

#: the name of the artifact diagnosis among a decode's products (`rqvqa.diagnosis.product.Diagnosis`)
DIAGNOSIS = "diagnosis"

#: threads converting and analysing frames beside the decoder (2: 5.9 s -> 3.1 s for the three RQ-VQA samplers
#: on an 8-s 1080p clip on 2 cores; results do not depend on it)
DEFAULT_WORKERS = 2


# ------------------------------------------------------------------------------------------------- sources


class VideoSource(ABC):
    """Where the frames of one video come from."""

    #: the name messages and rows use (a path, or "<frames>")
    name: str
    #: frames `frames()` scaled to the first frame's size (a frame size that changes mid-stream; None: a
    #: source whose frames all have one size)
    size_changes: SizeChanges | None = None

    @property
    @abstractmethod
    def info(self) -> VideoInfo:
        """The video's facts (size, rate, frame count, rotation...)."""

    @abstractmethod
    def frames(self, threaded: bool = True) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) of every decodable frame in presentation order, counting from 0 (`threaded`: the
        decoder may use threads of its own)."""

    def packets(self) -> Packets:
        """Time and size of every coded packet (the coded bit budget)."""
        raise InputError(
            f"{self.name} has no coded stream (frames in memory): this model reads the coded bits"
        )


class FileSource(VideoSource):
    """A video file, decoded with PyAV (`rqvqa.video.reader`)."""

    def __init__(self, path: str | os.PathLike[str], info: VideoInfo | None = None):
        self.name = os.fspath(path)
        self._info = info
        self.size_changes = SizeChanges()

    @property
    def info(self) -> VideoInfo:
        if self._info is None:
            self._info = probe(self.name)
        return self._info

    def frames(self, threaded: bool = True) -> Iterator[tuple[int, av.VideoFrame]]:
        return decode_frames(self.name, self.size_changes, threaded)

    def packets(self) -> Packets:
        return video_packets(self.name)


class ArraySource(VideoSource):
    """Frames already in memory: uint8 RGB, shape (T, H, W, 3), shown at `fps` frames per second. Each frame
    reaches the collectors as an rgb24 `av.VideoFrame`, so a model reads exactly these pixels (those that read
    YUV get swscale's BT.601 conversion, as FFmpeg would encode them)."""

    def __init__(self, frames: np.ndarray, fps: float, name: str = "<frames>"):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise InputError(
                f"frames must be uint8 RGB of shape (T, H, W, 3), not {frames.dtype} {frames.shape}"
            )
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be a positive number, not {fps!r}")
        height, width = frames.shape[1:3]
        check_frame_size(width, height, name)
        self.name = name
        self.array = frames
        rate = Fraction(fps).limit_denominator(1001 * 1000)
        self._info = VideoInfo(
            path=name,
            frame_rate=rate,
            frame_count=len(frames),
            duration=len(frames) / float(rate),
            width=width,
            height=height,
            rotation=0,
            pix_fmt="rgb24",
            bit_depth=8,
            codec="frames",
            container_frame_count=len(frames),
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    def frames(self, threaded: bool = True) -> Iterator[tuple[int, av.VideoFrame]]:
        time_base = Fraction(self._info.frame_rate.denominator, self._info.frame_rate.numerator)
        for index, rgb in enumerate(self.array):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = index, time_base
            yield index, frame


def open_source(video: str | os.PathLike[str] | VideoSource) -> VideoSource:
    return video if isinstance(video, VideoSource) else FileSource(video)


# --------------------------------------------------------------------------------------- products, pool


class Pool:
    """A thread pool that holds at most `2 * workers` jobs in flight: `submit` waits for the oldest job when
    the decoder runs ahead of the work, so memory stays a few frames whatever the video. `workers=0` runs
    every job in the calling thread."""

    def __init__(self, workers: int = DEFAULT_WORKERS):
        self.workers = max(int(workers), 0)
        self._executor = ThreadPoolExecutor(self.workers) if self.workers else None
        self._in_flight: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self._executor is None:
            done: Future = Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future, as a pool would
                done.set_exception(exc)
            return done
        while len(self._in_flight) >= 2 * self.workers:
            self._in_flight.popleft().result()
        job = self._executor.submit(fn, *args)
        self._in_flight.append(job)
        return job

    def drain(self) -> None:
        """Wait for every job (raising the first failure)."""
        while self._in_flight:
            self._in_flight.popleft().result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


class Collector(ABC):
    """Collects one product of one video while it decodes (see the module docstring)."""

    #: a passive collector takes what the others make the decoder read and never extends the decode
    passive: bool = False

    @abstractmethod
    def last(self) -> int | None:
        """The last frame index this collector needs (None: every frame to the end; -1: no frame)."""

    def wants(self, index: int) -> bool:
        """Whether frame `index` goes to `feed` (a collector that reads no frame keeps this default)."""
        return False

    def feed(self, index: int, frame: av.VideoFrame, pool: Pool) -> None:
        """Take frame `index` (called in decode order, in the decoding thread; heavy work goes to `pool`)."""
        raise RuntimeError(f"{type(self).__name__} was fed frame {index}, which it does not want")

    @abstractmethod
    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> Any:
        """The product, once decoding stopped after `decoded` frames (`last_frame`: the last one decoded,
        for collectors that pad missing frames of a truncated file with it)."""


class Product(ABC):
    """Something a model reads from a video. Products are frozen dataclasses: picklable (they travel to the
    CPU workers) and comparable (two models asking for the same product share it)."""

    #: its collectors' work on the frames costs several times their decoding (VIDEVAL's frame features):
    #: the pool's threads then keep the cores busy and the decoder runs in one FFmpeg thread, which costs
    #: the least CPU per frame (frame threads would compete with the pool and spend CPU on synchronisation)
    heavy: bool = False

    @abstractmethod
    def collector(self, source: VideoSource) -> Collector: ...


_STOP: ContextVar[threading.Event | None] = ContextVar("rqvqa_decode_stop", default=None)


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[threading.Event]:
    """Decodes run in this block (in this thread) end at the next frame once `stop` is set, raising
    `StoppedError`: a caller that gave up on the result (the service after a request's timeout) gets its CPU
    and its slot back within one frame's work instead of after the whole video."""
    token = _STOP.set(stop)
    try:
        yield stop
    finally:
        _STOP.reset(token)


def decode(
    video: str | os.PathLike[str] | VideoSource,
    products: Mapping[str, Product],
    workers: int = DEFAULT_WORKERS,
) -> dict[str, Any]:
    """Decode `video` once and return every product by name (see the module docstring)."""
    tune_allocator()  # once per process: the frame work's freed arrays stay in the heap for the next frame
    source = open_source(video)
    collectors = {name: product.collector(source) for name, product in products.items()}
    active = [c for c in collectors.values() if not c.passive]
    ends = [c.last() for c in active]
    last_needed = None if any(e is None for e in ends) else max(ends, default=-1)
    threaded = not (workers and any(product.heavy for product in products.values()))
    decoded, last_frame = 0, None
    stop = _STOP.get()
    pool = Pool(workers)
    try:
        if last_needed is None or last_needed >= 0:
            for index, frame in source.frames(threaded):
                if stop is not None and stop.is_set():
                    raise StoppedError(
                        f"stopped after {index} frames: the caller gave up (timeout)", source.name
                    )
                decoded, last_frame = index + 1, frame
                for collector in collectors.values():
                    if collector.wants(index):
                        collector.feed(index, frame, pool)
                if last_needed is not None and index >= last_needed:
                    break
        pool.drain()
        return {name: c.finish(decoded, last_frame) for name, c in collectors.items()}
    finally:
        pool.close()


# ------------------------------------------------------------------------------------ the CPU stage


@dataclass
class Decoded:
    """What the decode stage hands to the model stage for one video."""

    info: VideoInfo
    products: dict[str, Any]
    #: wall and CPU seconds of the decode stage (the process that decoded it)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: what decoding found that the row should say (`frame_size`: the note of `SizeChanges`)
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.products[name]

    @property
    def video(self) -> dict[str, Any]:
        """The decoded stream's facts, as rows carry them (`rqvqa.results`)."""
        return {
            "width": int(self.info.width),
            "height": int(self.info.height),
            "fps": float(self.info.frame_rate),
            "duration": float(self.info.duration),
            "frames": int(self.info.frame_count),
        }

    @property
    def diagnosis(self) -> dict[str, dict] | None:
        """The artifact diagnosis, when the decode computed it (`DIAGNOSIS` product)."""
        return self.products.get(DIAGNOSIS)

    def describe(self, outcome: Any) -> Any:
        """`outcome`, the model stage's result for this video, with the video's facts, its diagnosis and the
        decode stage's notes (a frame size that changed mid-stream) in its extra when it is a `Prediction`
        (other stages, `extract`'s, return other things: unchanged)."""
        if isinstance(outcome, Prediction):
            outcome.video, outcome.diagnosis = self.video, self.diagnosis
            outcome.extra.update(self.extra)
        return outcome


@dataclass(frozen=True)
class Decoder:
    """The decode stage of one model as a picklable callable (what a collection engine runs in its CPU
    workers): video -> `Decoded`."""

    products: tuple[tuple[str, Product], ...]
    workers: int = DEFAULT_WORKERS

    def __call__(self, video: str | os.PathLike[str] | VideoSource) -> Decoded:
        wall, cpu = time.perf_counter(), time.process_time()
        source = open_source(video)
        products = decode(source, dict(self.products), self.workers)
        note = source.size_changes.note() if source.size_changes else None
        extra = {"frame_size": note} if note else {}
        return Decoded(source.info, products, time.perf_counter() - wall, time.process_time() - cpu, extra)

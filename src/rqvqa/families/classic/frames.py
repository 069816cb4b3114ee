"""Video-level BRISQUE / NIQE, as the UGC-VQA benchmark (Tu et al., TIP 2021) computed them for KoNViD-1k.

Frame protocol (worked out against the official KoNViD-1k rows, see `docs/baselines.md`):

- the luma plane as decoded (8-bit Y of yuv420p, limited range as stored, no conversion to RGB);
- one frame per second: with `step = round(fps)`, the 0-based frames `step // 2 - 1 + k * step` for every
  whole second k (1-based frame 15, 45, ... at 29.97 fps: eight frames of a 240-frame clip); a clip shorter
  than one second uses its middle frame;
- per-video value = the plain mean over those frames (BRISQUE: of each of the 36 features; NIQE: of the
  per-frame scores).

The official per-video BRISQUE features are multiples of 0.001 / 8 in their shape entries, which fixes the
frame count at 8; the frame offset is the one that reproduces the official row (the fitted shapes match
exactly, see the tests).

`max_frames` (fast mode) keeps an evenly spaced subset of the protocol frames; every second then takes the
features of the nearest sampled frame.

`ProtocolFrames` (the features) and `CodedBits` (the coded bit budget) are products of the decode stage
(`rqvqa.video.decode`).
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import dataclass, field

import av
import numpy as np

from rqvqa.errors import UnmeasurableError, VideoError, no_measurable_content
from rqvqa.families.classic.brisque import brisque_features
from rqvqa.families.classic.niqe import niqe_score
from rqvqa.video.decode import Collector, FileSource, Pool, Product, VideoSource, decode
from rqvqa.video.reader import Packets, VideoInfo, frame_to_gray


def protocol_frames(frame_count: int, fps: float) -> list[int]:
    """0-based indices of the frames the protocol reads: the middle frame of every whole second."""
    step = max(int(round(fps)), 1)
    first = max(step // 2 - 1, 0)
    frames = list(range(first, frame_count, step))[: frame_count // step]
    return frames if frames else [max(frame_count // 2, 0)]


def subsample(frames: list[int], max_frames: int | None) -> list[int]:
    """Evenly spaced subset of `frames` (first and last kept) of at most `max_frames` entries."""
    if max_frames is None or max_frames >= len(frames):
        return list(frames)
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if max_frames == 1:
        return [frames[len(frames) // 2]]
    picks = np.round(np.linspace(0, len(frames) - 1, max_frames)).astype(int)
    return [frames[i] for i in sorted(set(picks.tolist()))]


@dataclass
class VideoFeatures:
    """Per-frame and pooled features of one video, over the frames the models could measure.

    A sampled frame the frame-level code cannot measure (`UnmeasurableError`: flat content, a frame below the
    model's minimum size) is left out of the pooled features and its seconds have no row (`second_rows` gives
    None). `video_features` raises `UnmeasurableError` when no sampled frame is measurable.
    """

    info: VideoInfo
    #: decoded frame index of each measured frame (the rows of `brisque` / `niqe`)
    frame_indices: list[int]
    #: number of seconds the per-second outputs cover (one per protocol frame)
    n_seconds: int
    #: (n_measured, 36) BRISQUE features, or None when not requested
    brisque: np.ndarray | None
    #: (n_measured,) NIQE scores, or None when not requested
    niqe: np.ndarray | None
    #: sampled frames that could not be measured: decoded frame index -> reason
    unmeasurable: dict[int, str] = field(default_factory=dict)

    def second_frames(self) -> list[int]:
        """For each second, the sampled frame standing for it: its protocol frame, or in fast mode the nearest
        sampled one."""
        protocol = protocol_frames(self.info.frame_count, float(self.info.frame_rate))[: self.n_seconds]
        sampled = np.asarray(sorted([*self.frame_indices, *self.unmeasurable]))
        return [int(sampled[np.argmin(np.abs(sampled - f))]) for f in protocol]

    def second_rows(self) -> list[int | None]:
        """For each second, the row of its frame (`second_frames`), or None when that frame could not be
        measured."""
        row_of = {f: r for r, f in enumerate(self.frame_indices)}
        return [row_of.get(f) for f in self.second_frames()]

    @property
    def brisque_video(self) -> np.ndarray:
        """The 36 per-video BRISQUE features (mean over the measured frames)."""
        if self.brisque is None:
            raise ValueError("BRISQUE features were not computed")
        return self.brisque.mean(axis=0)

    @property
    def niqe_video(self) -> float:
        if self.niqe is None:
            raise ValueError("NIQE was not computed")
        return float(self.niqe.mean())


@dataclass(frozen=True)
class ProtocolFrames(Product):
    """The protocol frames' BRISQUE features and/or NIQE scores, as a product of the decode stage (a
    `VideoFeatures`). `max_frames` (fast mode) keeps an evenly spaced subset of them."""

    brisque: bool = True
    niqe: bool = False
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("max_frames must be at least 1")

    def collector(self, source: VideoSource) -> Collector:
        return _ProtocolCollector(self, source.info)


class _ProtocolCollector(Collector):
    def __init__(self, spec: ProtocolFrames, info: VideoInfo):
        self.spec, self.info = spec, info
        self.protocol = protocol_frames(info.frame_count, float(info.frame_rate))
        self.wanted = subsample(self.protocol, spec.max_frames)
        self.todo = set(self.wanted)
        self.futures: dict[int, Future] = {}

    def last(self) -> int:
        return max(self.wanted)

    def wants(self, index: int) -> bool:
        return index in self.todo

    def feed(self, index: int, frame: av.VideoFrame, pool: Pool) -> None:
        # the features of one frame run while the decoder moves on to the next (numpy and FFmpeg release the
        # GIL)
        self.futures[index] = pool.submit(self._compute, frame_to_gray(frame, self.info.rotation))

    def _compute(self, gray: np.ndarray) -> tuple[np.ndarray | None, float | None] | str:
        """The frame's features, or the reason it cannot be measured."""
        try:
            b = brisque_features(gray) if self.spec.brisque else None
            n = niqe_score(gray) if self.spec.niqe else None
        except UnmeasurableError as exc:
            return exc.reason
        # no NaN leaves a stage, whatever the frame-level code returns
        if (b is not None and not np.isfinite(b).all()) or (n is not None and not np.isfinite(n)):
            return "the features are not finite (flat or degenerate content)"
        return b, n

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> VideoFeatures:
        results = {i: f.result() for i, f in self.futures.items()}
        path = self.info.path
        got = [i for i in self.wanted if i in results]
        if not got:
            raise VideoError("no decodable frame at the sampled positions", path)
        reasons = {i: results[i] for i in got if isinstance(results[i], str)}
        measured = [i for i in got if i not in reasons]
        if not measured:
            raise no_measurable_content(reasons.values(), path)
        return VideoFeatures(
            info=self.info,
            frame_indices=measured,
            n_seconds=len(self.protocol),
            brisque=np.stack([results[i][0] for i in measured]) if self.spec.brisque else None,
            niqe=np.asarray([results[i][1] for i in measured], dtype=np.float64) if self.spec.niqe else None,
            unmeasurable=reasons,
        )


def video_features(
    path: str | os.PathLike[str],
    *,
    brisque: bool = True,
    niqe: bool = False,
    max_frames: int | None = None,
    info: VideoInfo | None = None,
) -> VideoFeatures:
    """Decode `path` once and compute the requested per-frame features on the protocol frames."""
    product = ProtocolFrames(brisque=brisque, niqe=niqe, max_frames=max_frames)
    return decode(FileSource(path, info), {"frames": product})["frames"]


@dataclass
class BitBudget:
    """Coded size of the video stream: log bits per pixel per frame, for the whole video and per second."""

    log_bpp: float
    log_bpp_per_second: list[float]


def bit_budget(packets: Packets, info: VideoInfo, n_seconds: int) -> BitBudget:
    """Sum the video packets' sizes (a demux pass, nothing is decoded), overall and per second of pts.

    log(bits / (width * height * frames)) equals log(bitrate / (width * height * fps)) of the KoNViD-1k
    metadata (the stream bitrate), which is what the lite model was trained on.
    """
    pixels = float(info.width * info.height)
    if not packets.sizes.size:
        raise VideoError("no video packets", info.path)
    times = packets.times
    nbytes = packets.sizes.astype(np.float64)
    overall = float(np.log(nbytes.sum() * 8 / (pixels * len(nbytes))))
    if np.all(np.isfinite(times)):
        sec = np.clip(np.floor(times - times.min()).astype(int), 0, max(n_seconds - 1, 0))
    else:  # no timestamps: split the packets evenly in stream order
        sec = np.minimum(np.arange(len(nbytes)) * max(n_seconds, 1) // len(nbytes), max(n_seconds - 1, 0))
    per_second = []
    for k in range(max(n_seconds, 1)):
        mask = sec == k
        per_second.append(
            float(np.log(nbytes[mask].sum() * 8 / (pixels * mask.sum()))) if mask.any() else overall
        )
    return BitBudget(overall, per_second)


@dataclass(frozen=True)
class CodedBits(Product):
    """The coded bit budget of the video stream over the protocol's seconds (a `BitBudget`): a demux pass, no
    frame. Frames in memory have no coded stream: the product then fails with a one-line reason."""

    def collector(self, source: VideoSource) -> Collector:
        return _BitsCollector(source)


class _BitsCollector(Collector):
    def __init__(self, source: VideoSource):
        self.source = source

    def last(self) -> int:
        return -1

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> BitBudget:
        info = self.source.info
        n_seconds = len(protocol_frames(info.frame_count, float(info.frame_rate)))
        return bit_budget(self.source.packets(), info, n_seconds)

"""Samplers fed from one streaming decode: key frames (Eq. 1), chunks (Eq. 2), FAST-VQA fragments.

Public API (others import these names):

- `plan(info, mode)` / `make_plan(frame_count, fps_int, mode)` -> `SamplingPlan`: key-frame indices and chunk
  ranges, exactly as the official code pads them (rules in `docs/video.md`).
- `plan_fragments(frame_count, height, width, rng)` -> `FragmentPlan`: FAST-VQA-B frame indices and patch
  offsets.
- `Sampling(keyframes=..., keyframes_384=..., chunks=..., fragments=..., mode=..., seed=...)`: the samplers as
  one product of the decode stage (`rqvqa.video.decode`), giving a `VideoSample`; `sample_video(path, ...)`
  decodes one video for them (one pass feeding every requested sampler; holds only the outputs, never the
  video).
- Resampling: `resize_short_side_384(rgb)` (cv2 INTER_LINEAR, official key-frame extraction),
  `resize_chunk_frame(rgb)` (PIL bilinear to 224x224, SlowFast), `upsample_for_fragments(rgb)` (FAST-VQA
  fallback for short side < 224).

What a network does with the samples (crops, normalisation) is its family's preprocessing
(`rqvqa.families.<family>.preprocess`), not the sampler's.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from rqvqa.errors import UnmeasurableError
from rqvqa.video.decode import DEFAULT_WORKERS, Collector, FileSource, Pool, Product, VideoSource, decode
from rqvqa.video.reader import VideoInfo, frame_to_rgb

KEYFRAME_SHORT_SIDE = 384
OFFICIAL_ROWS = 8
CHUNK_LENGTH = 32
CHUNK_SIZE = 224
#: chunks written by the official SlowFast extractor when the rounded frame rate is 0
ZERO_FPS_CHUNKS = 10
FRAGMENT_GRID = 7
FRAGMENT_PATCH = 32
FRAGMENT_SIZE = FRAGMENT_GRID * FRAGMENT_PATCH
FRAGMENT_CLIPS = 4
FRAGMENT_CLIP_LENGTH = 32
FRAGMENT_INTERVAL = 2

#: the most elongated frames (long side / short side) a product that scales by the short side accepts: the
#: long side of a 384 key frame stays <= 3072 px (a 4000x16 clip would give 96000x384 key frames, 3 GB and
#: minutes of work for 8 of them); 6:1 panorama layouts and 32:9 ultra-wide video pass
MAX_ASPECT = 8

MODES = ("official", "full")
CHUNK_RESIZERS = ("pil", "swscale")


@dataclass
class VideoSample:
    """Everything the models read from one video, produced by a single decode pass.

    Products not requested are None. All arrays are uint8 RGB, channels last, upright.
    Row i of key frames and row i of chunks form one "second" of the video (both lists have the official
    padding; in official mode there are exactly 8 key-frame rows and at least 8 chunk rows, the RQ-VQA model
    reads the first 8).
    """

    info: VideoInfo
    #: decoded frame index of each key frame row (official mode repeats the last one up to 8)
    keyframe_indices: list[int]
    #: key frames at native resolution, each (H, W, 3) (LIQE, Q-Align)
    keyframes: list[np.ndarray] | None = None
    #: key frames resized so the short side is 384 (cv2-style bilinear, no antialias), each (h, w, 3)
    keyframes_384: list[np.ndarray] | None = None
    #: (start, stop) frame ranges of each chunk, stop exclusive before padding
    chunk_ranges: list[tuple[int, int]] = field(default_factory=list)
    #: chunks of 32 frames resized to 224x224, shape (n_chunks, 32, 224, 224, 3)
    chunks: np.ndarray | None = None
    #: FAST-VQA fragments, shape (n_clips, T, 224, 224, 3) (FAST-VQA-B: 4 clips, T = 32)
    fragments: np.ndarray | None = None
    #: "official" or "full"
    mode: str = "official"
    #: seed of the generator behind the fragment offsets
    seed: int = 0
    #: frames actually decoded before sampling stopped (the decode stops after the last frame any sampler
    #: needs, so this is <= info.frame_count; it is smaller than needed only for corrupt/truncated files,
    #: whose missing frames are replaced by the last decoded one, as the official SlowFast loader does)
    decoded_frames: int = 0
    #: frame index of every fragment frame, shape (n_clips, T)
    fragment_indices: np.ndarray | None = None


# --------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class SamplingPlan:
    """Which frames are key frames and which frame ranges form the chunks (rows already padded)."""

    mode: str
    fps_int: int
    frame_count: int
    keyframe_indices: list[int]
    #: (start, stop): the chunk's real frames; positions past `stop - start` repeat frame `stop - 1`
    chunk_ranges: list[tuple[int, int]]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chunk_ranges"] = [list(r) for r in self.chunk_ranges]
        return d


def _pad_rows(rows: list, minimum: int) -> list:
    return rows + [rows[-1]] * (minimum - len(rows))


def make_plan(frame_count: int, fps_int: int, mode: str = "official") -> SamplingPlan:
    """The sampling plan for a video of `frame_count` frames at integer rate `fps_int` (see docs/video.md).

    Official (checkpoint parity): key frames are `idx % fps_int == 0` (every frame when `fps_int` is 0), the
    first 8 kept and the last repeated up to 8; chunks start at `i * fps_int` for i < floor(N / fps_int)
    (10 chunks at frame 0 when `fps_int` is 0), the last chunk repeated up to 8. The two paddings are
    independent, as upstream. Full: every key frame, and one chunk per key frame (no padding).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if frame_count < 1:
        raise ValueError("frame_count must be >= 1")
    step = max(fps_int, 1)
    keys = list(range(0, frame_count, step))

    def chunk(start: int) -> tuple[int, int]:
        return (start, min(start + CHUNK_LENGTH, frame_count))

    if mode == "full":
        return SamplingPlan(mode, fps_int, frame_count, keys, [chunk(k) for k in keys])
    key_rows = _pad_rows(keys[:OFFICIAL_ROWS], OFFICIAL_ROWS)
    if fps_int == 0:
        starts = [0] * ZERO_FPS_CHUNKS
    else:
        # Upstream crashes on videos shorter than one second (zero chunks); we keep one chunk at frame 0.
        starts = [i * fps_int for i in range(max(frame_count // fps_int, 1))]
    chunk_rows = _pad_rows([chunk(s) for s in starts], OFFICIAL_ROWS)
    return SamplingPlan(mode, fps_int, frame_count, key_rows, chunk_rows)


def plan(info: VideoInfo, mode: str = "official") -> SamplingPlan:
    """The sampling plan of a probed video."""
    return make_plan(info.frame_count, info.fps_int, mode)


@dataclass(frozen=True)
class FragmentPlan:
    """FAST-VQA-B grid mini-patch sampling: which frames, and where each 32x32 patch is cut.

    `frame_indices[k, t]` is the frame of clip k, step t. The patch of grid cell (i, j) in clip k is
    `frame[grid_h[i] + offset_h[i, j, k] :+32, grid_w[j] + offset_w[i, j, k] :+32]` in the (possibly
    upsampled) frame, so patch positions are aligned over each clip.
    """

    frame_indices: np.ndarray  # (clips, T) int64
    grid_h: np.ndarray  # (7,)
    grid_w: np.ndarray  # (7,)
    offset_h: np.ndarray  # (7, 7, clips)
    offset_w: np.ndarray  # (7, 7, clips)
    #: frame size the patches are cut from (after the upsampling fallback)
    sample_height: int
    sample_width: int


def fragment_frame_indices(frame_count: int, rng: np.random.Generator) -> np.ndarray:
    """4 segments of N // 4 frames; in each, 32 frames at stride 2 from a random offset (0 when the segment is
    not longer than the 64-frame span); indices wrap modulo N."""
    segment = frame_count // FRAGMENT_CLIPS
    span = FRAGMENT_CLIP_LENGTH * FRAGMENT_INTERVAL
    starts = np.arange(FRAGMENT_CLIPS) * segment
    if segment > span:
        starts = starts + rng.integers(0, segment - span, size=FRAGMENT_CLIPS)
    steps = np.arange(FRAGMENT_CLIP_LENGTH) * FRAGMENT_INTERVAL
    return np.mod(starts[:, None] + steps[None, :], frame_count).astype(np.int64)


def fragment_sample_size(height: int, width: int) -> tuple[int, int, float | None]:
    """(height, width, scale) of the frames patches are cut from: upsampled by 1/ratio when the short side
    is below 224 (ratio = min(H, W) / 224 per axis, as FAST-VQA computes it); scale None = no upsampling."""
    ratio = min(height / FRAGMENT_SIZE, width / FRAGMENT_SIZE)
    if ratio >= 1:
        return height, width, None
    scale = 1 / ratio
    # torch.nn.functional.interpolate(scale_factor=s) gives floor(size * s).
    return int(height * scale), int(width * scale), scale


def plan_fragments(
    frame_count: int, height: int, width: int, rng: np.random.Generator, grid: str = "upstream"
) -> FragmentPlan:
    """Draw the fragment plan. `grid="upstream"` places the 7x7 grid using the frame size *before* the
    upsampling fallback, as FAST-VQA's code does; `"upsampled"` uses the upsampled size (covers the whole
    frame). Both are identical for frames whose short side is >= 224. Frames under 32 px always use the
    upsampled size (upstream slices out of bounds there)."""
    if grid not in ("upstream", "upsampled"):
        raise ValueError(f"grid must be 'upstream' or 'upsampled', not {grid!r}")
    indices = fragment_frame_indices(frame_count, rng)
    sample_h, sample_w, _ = fragment_sample_size(height, width)
    grid_h, grid_w = height, width
    if grid == "upsampled" or min(height, width) < FRAGMENT_PATCH:
        grid_h, grid_w = sample_h, sample_w

    def axis(size: int) -> tuple[np.ndarray, np.ndarray]:
        cell = size // FRAGMENT_GRID
        starts = np.array([min(cell * i, size - FRAGMENT_PATCH) for i in range(FRAGMENT_GRID)])
        if cell > FRAGMENT_PATCH:
            shape = (FRAGMENT_GRID, FRAGMENT_GRID, FRAGMENT_CLIPS)
            offsets = rng.integers(0, cell - FRAGMENT_PATCH, size=shape)
        else:
            offsets = np.zeros((FRAGMENT_GRID, FRAGMENT_GRID, FRAGMENT_CLIPS), dtype=np.int64)
        return starts, offsets

    starts_h, offsets_h = axis(grid_h)
    starts_w, offsets_w = axis(grid_w)
    return FragmentPlan(indices, starts_h, starts_w, offsets_h, offsets_w, sample_h, sample_w)


# ------------------------------------------------------------------------------------------ resampling


def keyframe_384_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of a key frame after the official resize: short side 384, long side
    `int(384 / short * long)` (truncated, in that float order)."""
    if height > width:
        return int(KEYFRAME_SHORT_SIDE / width * height), KEYFRAME_SHORT_SIDE
    return KEYFRAME_SHORT_SIDE, int(KEYFRAME_SHORT_SIDE / height * width)


def check_aspect(width: int, height: int, short_side: int, what: str, path: str | None = None) -> None:
    """Refuse frames too elongated to scale to a `short_side` short side (`MAX_ASPECT`), with a one-line
    `UnmeasurableError` naming the size they would have (models that do not scale by the short side still
    score such a video)."""
    short, long = sorted((width, height))
    if long > MAX_ASPECT * short:
        scaled = int(short_side / short * long)
        raise UnmeasurableError(
            f"frames {width}x{height} are too elongated ({long / short:.0f}:1, at most {MAX_ASPECT}:1) for "
            f"{what} at a {short_side}-pixel short side: they would be {scaled} px long",
            path,
        )


def resize_short_side_384(rgb: np.ndarray) -> np.ndarray:
    """Official key-frame resize: cv2.resize INTER_LINEAR (no antialiasing) to `keyframe_384_size`."""
    h, w = keyframe_384_size(*rgb.shape[:2])
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_chunk_frame(rgb: np.ndarray) -> np.ndarray:
    """SlowFast frame: PIL bilinear (antialiased, as torchvision Resize on PIL images) to 224x224."""
    image = Image.fromarray(rgb).resize((CHUNK_SIZE, CHUNK_SIZE), Image.BILINEAR)
    return np.asarray(image)


def swscale_chunk_frame(frame: av.VideoFrame, info: VideoInfo) -> np.ndarray:
    """Fast, non-parity chunk frame: swscale converts YUV to RGB and shrinks to 224x224 (bilinear) in one
    step; rotation is applied afterwards (the output is square, so only the pixel layout turns)."""
    small = frame.reformat(width=CHUNK_SIZE, height=CHUNK_SIZE, format="rgb24", interpolation="BILINEAR")
    return frame_to_rgb(small, info.rotation)


def upsample_for_fragments(rgb: np.ndarray, scale: float) -> np.ndarray:
    """FAST-VQA's fallback: bilinear upsampling by `scale` on the 0-1 scale, then x255 truncated to uint8
    (torch `interpolate(x / 255, scale_factor=scale, mode="bilinear")`, `(y * 255).type_as(uint8)`)."""
    import torch  # lazily: `rqvqa info` and plain decoding should not pay torch's import time

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    y = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bilinear")
    return (y * 255.0).to(torch.uint8)[0].permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------------------ streaming sampler


@dataclass(frozen=True)
class Sampling(Product):
    """The RQ-VQA samplers as one decode product (a `VideoSample`): which of key frames (native size), key
    frames at short side 384, SlowFast chunks and FAST-VQA fragments, with the key-frame plan `mode` and the
    fragment `seed` (same arguments, same sample).

    Memory: only the outputs plus a few decoded frames are held (chunks are written in place as their frames
    stream by; fragments keep only their 32x32 patches). `chunk_resize`: "pil" (default) resizes chunk frames
    exactly as the official code; "swscale" lets FFmpeg convert and shrink each frame in one step from YUV
    (about
    10x cheaper, not bit-identical: mean absolute difference 1-4 grey levels on the synthetic clips, larger on
    sharp colour edges). `fragment_grid`: see `plan_fragments`.
    """

    keyframes: bool = False
    keyframes_384: bool = False
    chunks: bool = False
    fragments: bool = False
    mode: str = "official"
    seed: int = 0
    fragment_grid: str = "upstream"
    chunk_resize: str = "pil"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.chunk_resize not in CHUNK_RESIZERS:
            raise ValueError(f"chunk_resize must be one of {CHUNK_RESIZERS}, not {self.chunk_resize!r}")

    def union(self, other: Sampling) -> Sampling:
        """One sampling serving both (the same mode and seed)."""
        if (self.mode, self.seed) != (other.mode, other.seed):
            raise ValueError("samplings with different modes or seeds cannot share a decode")
        return replace(
            self,
            keyframes=self.keyframes or other.keyframes,
            keyframes_384=self.keyframes_384 or other.keyframes_384,
            chunks=self.chunks or other.chunks,
            fragments=self.fragments or other.fragments,
        )

    def collector(self, source: VideoSource) -> Collector:
        return _SampleCollector(self, source.info)


class _SampleCollector(Collector):
    def __init__(self, spec: Sampling, info: VideoInfo):
        self.spec, self.info = spec, info
        if spec.keyframes_384:
            check_aspect(info.width, info.height, KEYFRAME_SHORT_SIDE, "key frames", info.path)
        if spec.fragments and fragment_sample_size(info.height, info.width)[2] is not None:
            check_aspect(info.width, info.height, FRAGMENT_SIZE, "upsampled fragment frames", info.path)
        self.plan = plan(info, spec.mode)
        rng = np.random.default_rng(spec.seed)
        #: frame index -> the (product, position) pairs it fills
        self.by_frame: dict[int, list[tuple[str, tuple[int, ...]]]] = defaultdict(list)
        self.key_unique = sorted(set(self.plan.keyframe_indices))
        if spec.keyframes or spec.keyframes_384:
            for row, index in enumerate(self.key_unique):
                self.by_frame[index].append(("key", (row,)))
        self.chunk_unique = list(dict.fromkeys(self.plan.chunk_ranges))
        self.chunk_out = None
        if spec.chunks:
            shape = (len(self.chunk_unique), CHUNK_LENGTH, CHUNK_SIZE, CHUNK_SIZE, 3)
            self.chunk_out = np.empty(shape, np.uint8)
            for c, (start, stop) in enumerate(self.chunk_unique):
                for t in range(CHUNK_LENGTH):
                    # positions past the end repeat the chunk's last real frame
                    self.by_frame[min(start + t, stop - 1)].append(("chunk", (c, t)))
        self.frag_plan = self.frag_out = self.frag_scale = None
        if spec.fragments:
            self.frag_plan = plan_fragments(
                info.frame_count, info.height, info.width, rng, spec.fragment_grid
            )
            _, _, self.frag_scale = fragment_sample_size(info.height, info.width)
            shape = (FRAGMENT_CLIPS, FRAGMENT_CLIP_LENGTH, FRAGMENT_SIZE, FRAGMENT_SIZE, 3)
            self.frag_out = np.empty(shape, np.uint8)
            for k in range(FRAGMENT_CLIPS):
                for t in range(FRAGMENT_CLIP_LENGTH):
                    self.by_frame[int(self.frag_plan.frame_indices[k, t])].append(("frag", (k, t)))
        self.key_native: dict[int, np.ndarray] = {}
        self.key_small: dict[int, np.ndarray] = {}
        self.filled: set[tuple[str, tuple[int, ...]]] = set()
        self.pending: list[Future] = []

    def last(self) -> int | None:
        return max(self.by_frame) if self.by_frame else -1

    def wants(self, index: int) -> bool:
        return index in self.by_frame

    def feed(self, index: int, frame: av.VideoFrame, pool: Pool) -> None:
        self.pending.append(pool.submit(self._fill, index, frame, self.by_frame[index]))

    def _fill(self, index: int, frame: av.VideoFrame, items: list[tuple[str, tuple[int, ...]]]) -> None:
        spec, info = self.spec, self.info
        # full-resolution RGB only when some product needs it (not for swscale-resized chunk frames)
        full_rgb = spec.chunk_resize == "pil" or any(product != "chunk" for product, _ in items)
        rgb = frame_to_rgb(frame, info.rotation) if full_rgb else None
        small = patches_src = None
        for product, pos in items:
            if product == "key":
                if spec.keyframes:
                    self.key_native[index] = rgb
                if spec.keyframes_384:
                    self.key_small[index] = resize_short_side_384(rgb)
            elif product == "chunk":
                if small is None and spec.chunk_resize == "pil":
                    small = resize_chunk_frame(rgb)
                elif small is None:
                    small = swscale_chunk_frame(frame, info)
                self.chunk_out[pos] = small
            else:
                if patches_src is None:
                    scale = self.frag_scale
                    patches_src = rgb if scale is None else upsample_for_fragments(rgb, scale)
                _cut_patches(patches_src, self.frag_plan, pos[0], self.frag_out[pos])
            self.filled.add((product, pos))

    def finish(self, decoded: int, last_frame: av.VideoFrame | None) -> VideoSample:
        for job in self.pending:
            job.result()
        key_rows = list(self.plan.keyframe_indices)
        last_needed = self.last()
        if decoded <= last_needed:
            # Corrupt or truncated: key frames that never decoded fall back to the last decoded key frame (the
            # official OpenCV loop skips failed reads); other missing frames repeat the last decoded frame.
            done_keys = [k for k in self.key_unique if k < decoded]
            key_rows = [k if k < decoded else done_keys[-1] for k in key_rows]
            missing = [
                (product, pos)
                for items in self.by_frame.values()
                for product, pos in items
                if product != "key" and (product, pos) not in self.filled
            ]
            if missing and last_frame is not None:
                self._fill(decoded - 1, last_frame, missing)
        spec = self.spec
        sample = VideoSample(
            info=self.info,
            keyframe_indices=key_rows,
            chunk_ranges=list(self.plan.chunk_ranges),
            mode=spec.mode,
            seed=spec.seed,
            decoded_frames=decoded,
        )
        if spec.keyframes:
            sample.keyframes = [self.key_native[k] for k in key_rows]
        if spec.keyframes_384:
            sample.keyframes_384 = [self.key_small[k] for k in key_rows]
        if spec.chunks:
            chunk_rows = [self.chunk_unique.index(r) for r in self.plan.chunk_ranges]
            # copy only when rows repeat (padding); a long video's chunks are returned without a second copy
            padded = chunk_rows != list(range(len(self.chunk_unique)))
            sample.chunks = self.chunk_out[chunk_rows] if padded else self.chunk_out
        if spec.fragments:
            sample.fragments = self.frag_out
            sample.fragment_indices = self.frag_plan.frame_indices
        return sample


def sample_video(
    video: str | os.PathLike[str] | VideoSource,
    *,
    info: VideoInfo | None = None,
    workers: int = DEFAULT_WORKERS,
    **sampling: Any,
) -> VideoSample:
    """Decode `video` once for the samplers named in `sampling` (the fields of `Sampling`: keyframes,
    keyframes_384, chunks, fragments, mode, seed, fragment_grid, chunk_resize). `info` skips the probe when
    the
    caller already has it; `workers`: threads converting and resizing frames beside the decoder (results are
    identical for any count)."""
    source = FileSource(video, info) if not isinstance(video, VideoSource) else video
    return decode(source, {"sample": Sampling(**sampling)}, workers)["sample"]


def _cut_patches(src: np.ndarray, fp: FragmentPlan, clip: int, out: np.ndarray) -> None:
    p = FRAGMENT_PATCH
    for i in range(FRAGMENT_GRID):
        for j in range(FRAGMENT_GRID):
            top = fp.grid_h[i] + fp.offset_h[i, j, clip]
            left = fp.grid_w[j] + fp.offset_w[i, j, clip]
            out[i * p : (i + 1) * p, j * p : (j + 1) * p] = src[top : top + p, left : left + p]

"""Sampling plans against the official rules, and the single-pass samplers against direct recomputation."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from rqvqa.families.rqvqa.preprocess import FrameTransform
from rqvqa.video.reader import iter_frames, probe
from rqvqa.video.sampling import (
    fragment_frame_indices,
    fragment_sample_size,
    keyframe_384_size,
    make_plan,
    plan,
    plan_fragments,
    sample_video,
    upsample_for_fragments,
)
from rqvqa.video.synth import make_video

# ------------------------------------------------------------------------------------------------ plans


def test_plan_2997fps_240_frames():
    """The SimpleVQA sample clip: 240 frames at 29.97 fps -> 8 key frames, chunk 7 padded with 2 copies."""
    p = make_plan(240, round(30000 / 1001), "official")
    assert p.keyframe_indices == [0, 30, 60, 90, 120, 150, 180, 210]
    assert p.chunk_ranges == [(i * 30, i * 30 + 32) for i in range(7)] + [(210, 240)]
    start, stop = p.chunk_ranges[7]
    assert 32 - (stop - start) == 2


def test_plan_5_5_seconds_pads_keyframes_and_chunks_independently():
    p = make_plan(165, 30, "official")
    assert p.keyframe_indices == [0, 30, 60, 90, 120, 150, 150, 150]  # ceil: 6 + two copies of 5
    assert p.chunk_ranges == [(0, 32), (30, 62), (60, 92), (90, 122)] + [(120, 152)] * 4  # floor: 5 + 3
    # the padded tail pairs key frame 5 with chunk 4
    assert p.keyframe_indices[5] == 150 and p.chunk_ranges[5] == (120, 152)


def test_plan_long_video_official_and_full():
    official = make_plan(360, 30, "official")
    assert official.keyframe_indices == [i * 30 for i in range(8)]  # first 8 seconds only
    assert len(official.chunk_ranges) == 12  # every whole second, as the SlowFast extractor writes
    assert official.chunk_ranges[-1] == (330, 360)
    full = make_plan(365, 30, "full")
    assert full.keyframe_indices == [i * 30 for i in range(13)]
    assert full.chunk_ranges[:12] == [(i * 30, i * 30 + 32) for i in range(11)] + [(330, 362)]
    assert full.chunk_ranges[12] == (360, 365)  # one chunk per key frame in full mode


def test_plan_full_mode_short_video():
    p = make_plan(165, 30, "full")
    assert p.keyframe_indices == [0, 30, 60, 90, 120, 150]
    assert len(p.chunk_ranges) == 6 and p.chunk_ranges[-1] == (150, 165)


def test_plan_fps_rounding_to_zero():
    p = make_plan(5, 0, "official")
    assert p.keyframe_indices == [0, 1, 2, 3, 4, 4, 4, 4]
    assert p.chunk_ranges == [(0, 5)] * 10
    assert make_plan(5, 0, "full").keyframe_indices == [0, 1, 2, 3, 4]


def test_plan_shorter_than_one_second():
    p = make_plan(15, 30, "official")
    assert p.keyframe_indices == [0] * 8
    assert p.chunk_ranges == [(0, 15)] * 8


def test_plan_rejects_unknown_mode_and_empty_video():
    with pytest.raises(ValueError, match="mode"):
        make_plan(10, 30, "everything")
    with pytest.raises(ValueError, match="frame_count"):
        make_plan(0, 30)


def test_fragment_temporal_indices_short_videos_are_deterministic():
    rng = np.random.default_rng(123)
    idx = fragment_frame_indices(240, rng)
    assert idx.shape == (4, 32)
    np.testing.assert_array_equal(idx[:, 0], [0, 60, 120, 180])
    np.testing.assert_array_equal(idx[0], np.arange(0, 64, 2))
    idx = fragment_frame_indices(150, rng)
    np.testing.assert_array_equal(idx[:, 0], [0, 37, 74, 111])
    assert idx[3, -1] == (111 + 62) % 150  # the last clip wraps to the start


def test_fragment_temporal_offsets_long_video():
    a = fragment_frame_indices(600, np.random.default_rng(0))
    b = fragment_frame_indices(600, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    offsets = a[:, 0] - np.arange(4) * 150
    assert ((offsets >= 0) & (offsets < 150 - 64)).all()
    np.testing.assert_array_equal(np.diff(a, axis=1), 2)


def test_fragment_spatial_grid_1080p():
    fp = plan_fragments(240, 1080, 1920, np.random.default_rng(0))
    np.testing.assert_array_equal(fp.grid_h, [154 * i for i in range(7)])
    np.testing.assert_array_equal(fp.grid_w, [274 * i for i in range(7)])
    assert fp.offset_h.shape == fp.offset_w.shape == (7, 7, 4)
    assert fp.offset_h.min() >= 0 and fp.offset_h.max() < 154 - 32
    assert fp.offset_w.max() < 274 - 32
    assert len(np.unique(fp.offset_h)) > 10  # really random
    assert (fp.sample_height, fp.sample_width) == (1080, 1920)


def test_fragment_grid_small_frames_upstream_and_upsampled():
    assert fragment_sample_size(120, 160) == (224, 298, 224 / 120)
    fp = plan_fragments(30, 120, 160, np.random.default_rng(0))
    # upstream computes the grid from the size before upsampling
    np.testing.assert_array_equal(fp.grid_h, [min(17 * i, 88) for i in range(7)])
    assert (fp.offset_h == 0).all() and (fp.offset_w == 0).all()
    fp = plan_fragments(30, 120, 160, np.random.default_rng(0), grid="upsampled")
    np.testing.assert_array_equal(fp.grid_h, [32 * i for i in range(7)])
    np.testing.assert_array_equal(fp.grid_w, [42 * i for i in range(7)])


def test_keyframe_384_size_truncates_like_official_code():
    assert keyframe_384_size(720, 1280) == (384, 682)
    assert keyframe_384_size(1280, 720) == (682, 384)
    assert keyframe_384_size(540, 960) == (384, 682)
    assert keyframe_384_size(17, 33) == (384, int(384 / 17 * 33))


# ------------------------------------------------------------------------------------- sample_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    # 320x240: grid cells 34x45 px > 32, so fragment offsets are random; 75 frames = 2.5 s at 30 fps
    return make_video(tmp_path_factory.mktemp("sampling") / "clip.mp4", width=320, height=240, n_frames=75)


@pytest.fixture(scope="module")
def frames(clip) -> list[np.ndarray]:
    return [f for _, f in iter_frames(clip)]


@pytest.fixture(scope="module")
def sample(clip):
    return sample_video(clip, keyframes=True, keyframes_384=True, chunks=True, fragments=True, seed=7)


def test_sample_matches_plan(clip, sample):
    p = plan(probe(clip))
    assert sample.keyframe_indices == p.keyframe_indices == [0, 30, 60, 60, 60, 60, 60, 60]
    assert sample.chunk_ranges == p.chunk_ranges == [(0, 32), (30, 62)] + [(30, 62)] * 6
    assert sample.mode == "official" and sample.seed == 7
    assert sample.decoded_frames <= 75


def test_keyframes_native_and_384(sample, frames):
    for index, native, small in zip(
        sample.keyframe_indices, sample.keyframes, sample.keyframes_384, strict=True
    ):
        np.testing.assert_array_equal(native, frames[index])
        assert small.shape == (384, 512, 3)
        np.testing.assert_array_equal(
            small, cv2.resize(frames[index], (512, 384), interpolation=cv2.INTER_LINEAR)
        )
    crops = FrameTransform().crops(sample.keyframes_384)
    assert crops.shape == (8, 384, 384, 3)
    np.testing.assert_array_equal(crops[1], sample.keyframes_384[1][:, 64:448])


def test_chunks_match_torchvision_resize_on_pil(sample, frames):
    resize = transforms.Resize([224, 224])  # the official SlowFast transform (PIL bilinear, antialiased)
    assert sample.chunks.shape == (8, 32, 224, 224, 3)
    for row, (start, stop) in enumerate(sample.chunk_ranges[:2]):
        for t in (0, 5, 31):
            source = frames[min(start + t, stop - 1)]
            expected = np.asarray(resize(Image.fromarray(source)))
            np.testing.assert_array_equal(sample.chunks[row, t], expected)
    # chunk 1 (30..61) is complete; padded rows repeat it
    for row in range(2, 8):
        np.testing.assert_array_equal(sample.chunks[row], sample.chunks[1])


def test_fragments_are_the_planned_native_patches(clip, sample, frames):
    info = probe(clip)
    fp = plan_fragments(info.frame_count, info.height, info.width, np.random.default_rng(7))
    np.testing.assert_array_equal(sample.fragment_indices, fp.frame_indices)
    assert sample.fragments.shape == (4, 32, 224, 224, 3)
    for k in range(4):
        for t in (0, 17, 31):
            frame = frames[fp.frame_indices[k, t]]
            for i, j in ((0, 0), (3, 5), (6, 6)):
                top = fp.grid_h[i] + fp.offset_h[i, j, k]
                left = fp.grid_w[j] + fp.offset_w[i, j, k]
                patch = sample.fragments[k, t, i * 32 : (i + 1) * 32, j * 32 : (j + 1) * 32]
                np.testing.assert_array_equal(patch, frame[top : top + 32, left : left + 32])


def test_fragments_are_seeded(clip, sample):
    again = sample_video(clip, fragments=True, seed=7)
    np.testing.assert_array_equal(again.fragments, sample.fragments)
    other = sample_video(clip, fragments=True, seed=8)
    assert not np.array_equal(other.fragments, sample.fragments)
    assert again.keyframes is None and again.chunks is None  # only what was asked for


def test_fragments_small_video_upsampled_like_fastvqa(tmp_path):
    path = make_video(tmp_path / "small.mp4", width=64, height=48, n_frames=6)
    sample = sample_video(path, fragments=True)
    frames = [f for _, f in iter_frames(path)]
    up = upsample_for_fragments(frames[0], 224 / 48)
    assert up.shape == (224, 298, 3)
    fp = plan_fragments(6, 48, 64, np.random.default_rng(0))
    top, left = fp.grid_h[2], fp.grid_w[1]  # upstream grid on the original size, offsets all 0
    np.testing.assert_array_equal(sample.fragments[0, 0, 64:96, 32:64], up[top : top + 32, left : left + 32])


def test_upsample_equals_fastvqa_batched_interpolation():
    """FAST-VQA upsamples the [C, T, H, W] clip in one call; per-frame upsampling must give the same bytes."""
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)  # T, H, W, C
    video = torch.from_numpy(clip).permute(3, 0, 1, 2)  # C, T, H, W
    scale = 1 / min(48 / 224, 64 / 224)
    ref = torch.nn.functional.interpolate(video / 255.0, scale_factor=scale, mode="bilinear")
    ref = (ref * 255.0).type_as(video).permute(1, 2, 3, 0).numpy()
    for t in range(3):
        np.testing.assert_array_equal(upsample_for_fragments(clip[t], scale), ref[t])


@pytest.mark.slow
def test_sampling_memory_is_bounded(tmp_path):
    """Peak memory stays near the size of the outputs, far below the decoded video's size."""
    width, height, n = 640, 480, 90
    path = make_video(tmp_path / "vga.mp4", width=width, height=height, n_frames=n, crf=35)
    info = probe(path)
    frame_bytes = width * height * 3
    tracemalloc.start()
    try:
        sample = sample_video(path, info=info, keyframes=True, chunks=True, fragments=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # outputs: chunk rows (plus the buffer of distinct chunks they are copied from), fragments, 3 key frames
    chunk_bytes = sample.chunks[0].nbytes
    outputs = sample.chunks.nbytes + len(set(sample.chunk_ranges)) * chunk_bytes
    outputs += sample.fragments.nbytes + 3 * frame_bytes
    assert sample.decoded_frames == n
    assert peak < outputs + 12 * frame_bytes
    assert peak < n * frame_bytes  # holding the whole video would need this much


def test_worker_threads_do_not_change_results(clip, sample):
    inline = sample_video(
        clip, keyframes=True, keyframes_384=True, chunks=True, fragments=True, seed=7, workers=0
    )
    threaded = sample_video(clip, keyframes=True, chunks=True, fragments=True, seed=7, workers=3)
    for other in (inline, threaded):
        np.testing.assert_array_equal(other.chunks, sample.chunks)
        np.testing.assert_array_equal(other.fragments, sample.fragments)
        for a, b in zip(other.keyframes, sample.keyframes, strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(inline.keyframes_384, sample.keyframes_384, strict=True):
        np.testing.assert_array_equal(a, b)


def test_swscale_chunk_resize_is_close_to_pil(clip, sample):
    fast = sample_video(clip, chunks=True, chunk_resize="swscale")
    assert fast.chunks.shape == sample.chunks.shape and fast.chunks.dtype == np.uint8
    diff = np.abs(fast.chunks.astype(int) - sample.chunks)
    assert 0 < diff.mean() < 5  # not bit-identical (chroma is resampled differently), same pictures
    with pytest.raises(ValueError, match="chunk_resize"):
        sample_video(clip, chunks=True, chunk_resize="nearest")


def test_decoding_stops_after_the_last_needed_frame(tmp_path):
    path = make_video(tmp_path / "ten_seconds.mp4", width=64, height=48, fps=10, n_frames=100)
    sample = sample_video(path, keyframes=True)
    assert sample.keyframe_indices == [i * 10 for i in range(8)]
    assert sample.decoded_frames == 71  # key frame 70 is the last one needed, of 100 frames

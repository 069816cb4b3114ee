"""Probe and decode: good files give the real values, every bad input gives a one-line VideoError."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from rqvqa.errors import VideoError
from rqvqa.video.reader import iter_frames, probe
from rqvqa.video.sampling import resize_chunk_frame, sample_video
from rqvqa.video.synth import (
    corrupt_file,
    make_audio_only,
    make_video,
    render_frame,
    truncate_file,
)


def cv2_frames(path: Path) -> list[np.ndarray]:
    """Frames as the official code reads them: OpenCV sequential reads (autorotated), converted to RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return frames


@pytest.fixture(scope="module")
def vdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reader")


@pytest.fixture(scope="module")
def faststart_clip(vdir) -> Path:
    return make_video(vdir / "fs.mp4", width=64, height=48, n_frames=60, faststart=True)


def assert_video_error(path: Path, reason: str) -> None:
    with pytest.raises(VideoError) as info:
        probe(path)
    message = str(info.value)
    assert message == f"{path}: {info.value.reason}"
    assert reason in info.value.reason
    assert "\n" not in message
    # decoding and sampling fail the same way
    with pytest.raises(VideoError, match=re.escape(reason)):
        next(iter_frames(path))
    with pytest.raises(VideoError, match=re.escape(reason)):
        sample_video(path, keyframes=True)


# ------------------------------------------------------------------------------------------- good files


def test_probe_basic_values(vdir):
    path = make_video(vdir / "basic.mp4", width=96, height=64, fps=Fraction(30000, 1001), n_frames=45)
    info = probe(path)
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.fps_int == 30
    assert info.frame_count == 45 == info.container_frame_count
    assert info.duration == pytest.approx(45 * 1001 / 30000, abs=0.05)
    assert (info.width, info.height, info.rotation) == (96, 64, 0)
    assert (info.pix_fmt, info.bit_depth, info.codec) == ("yuv420p", 8, "h264")
    frames = list(iter_frames(path))
    assert [i for i, _ in frames] == list(range(45))
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for _, f in frames)


def test_frames_match_opencv_reads(vdir):
    """Same frames, same order and same RGB values as the official OpenCV reader."""
    path = make_video(vdir / "cv.mp4", width=64, height=48, n_frames=20)
    ours = [f for _, f in iter_frames(path)]
    ref = cv2_frames(path)
    assert len(ours) == len(ref) == 20
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gray_is_decoded_luma_plane(vdir):
    import av

    path = make_video(vdir / "gray.mp4", width=64, height=48, n_frames=3)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    index, gray = next(iter_frames(path, fmt="gray"))
    assert index == 0 and gray.dtype == np.uint8 and gray.shape == (48, 64)
    np.testing.assert_array_equal(gray, y)
    # limited range is kept: a full-range conversion would stretch it
    assert gray.min() >= 16 and gray.max() <= 235


# ------------------------------------------------------------------------------------- bad-input cases


def test_missing_file(vdir):
    assert_video_error(vdir / "does_not_exist.mp4", "file not found")


def test_directory(vdir):
    assert_video_error(vdir, "is a directory")


def test_text_file_named_mp4(vdir):
    path = vdir / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 20)
    assert_video_error(path, "not a readable video file")


def test_audio_only_file(vdir):
    path = make_audio_only(vdir / "voice.mp4", seconds=0.5)
    assert_video_error(path, "no video stream (only audio)")


def test_zero_length_file(vdir):
    path = vdir / "empty.mp4"
    path.write_bytes(b"")
    assert_video_error(path, "empty file")


def test_truncated_h264_decodes_what_is_there(vdir, faststart_clip):
    path = truncate_file(faststart_clip, vdir / "truncated.mp4", 0.5)
    info = probe(path)
    assert info.container_frame_count == 60  # the header still claims the full clip
    assert 0 < info.frame_count < 60  # demuxing counts only packets whose data is there
    decoded = [i for i, _ in iter_frames(path)]
    assert decoded == list(range(len(decoded)))
    assert 0 < len(decoded) <= info.frame_count
    assert len(decoded) == len(cv2_frames(path))
    sample = sample_video(path, keyframes=True, chunks=True, fragments=True)
    n = len(decoded)
    assert n < 30 and sample.decoded_frames == n
    assert sample.chunks.shape == (8, 32, 224, 224, 3)
    assert sample.fragments.shape == (4, 32, 224, 224, 3)
    # planned from the demuxed count (< 30 frames: one chunk, repeated up to 8 rows)
    assert sample.keyframe_indices == [0] * 8
    assert sample.chunk_ranges == [(0, info.frame_count)] * 8
    # packets that did not decode: their positions repeat the last decoded frame (official SlowFast rule)
    last = resize_chunk_frame(next(f for i, f in iter_frames(path) if i == n - 1))
    assert (sample.chunks[0, n - 1 :] == last).all()
    np.testing.assert_array_equal(sample.chunks[0, 0], resize_chunk_frame(next(iter_frames(path))[1]))


def test_truncated_without_index_is_an_error(vdir):
    # moov at the end: cutting the file loses the index, nothing can be demuxed
    plain = make_video(vdir / "plain.mp4", width=64, height=48, n_frames=30)
    path = truncate_file(plain, vdir / "truncated_noindex.mp4", 0.6)
    assert_video_error(path, "truncated or damaged MP4/MOV file: its header or index does not parse")


def test_truncated_before_any_frame_is_an_error(vdir, faststart_clip):
    # keep the header and index but none of the frame data
    data = faststart_clip.read_bytes()
    mdat = data.index(b"mdat")
    path = vdir / "header_only.mp4"
    path.write_bytes(data[: mdat + 8])
    assert_video_error(path, "no decodable video frames")


def test_mid_stream_corrupted_h264(vdir, faststart_clip):
    path = corrupt_file(faststart_clip, vdir / "corrupt.mp4", 0.5, 400, seed=1)
    decoded = [i for i, _ in iter_frames(path)]
    # decoding goes on past the damage (OpenCV stops at the first error)
    assert len(decoded) > len(cv2_frames(path))
    assert 30 <= len(decoded) <= 60
    sample = sample_video(path, keyframes=True, chunks=True)
    assert sample.keyframe_indices == [0, 30] + [30] * 6


def test_heavily_corrupted_h264_falls_back_to_decoded_frames(vdir, faststart_clip):
    size = faststart_clip.stat().st_size
    path = corrupt_file(faststart_clip, vdir / "wrecked.mp4", 0.4, size // 2, seed=2)
    info = probe(path)
    assert info.frame_count == 60  # every packet is still there
    sample = sample_video(path, keyframes=True, chunks=True)
    n = sample.decoded_frames
    assert 0 < n < 31 and n == len(list(iter_frames(path)))
    # key frame 30 never decoded: its rows fall back to the last decoded key frame (OpenCV skips failed reads)
    assert sample.keyframe_indices == [0] * 8
    assert sample.chunk_ranges[:2] == [(0, 32), (30, 60)]
    last = resize_chunk_frame(next(f for i, f in iter_frames(path) if i == n - 1))
    assert (sample.chunks[1] == last).all()  # chunk 1 lies entirely in the undecodable part


def test_one_frame_video(vdir):
    path = make_video(vdir / "one.mp4", width=64, height=48, n_frames=1)
    info = probe(path)
    assert info.frame_count == 1
    sample = sample_video(path, keyframes=True, keyframes_384=True, chunks=True, fragments=True)
    assert sample.keyframe_indices == [0] * 8
    assert sample.chunk_ranges == [(0, 1)] * 8
    first = next(iter_frames(path))[1]
    for key in sample.keyframes:
        np.testing.assert_array_equal(key, first)
    # every chunk position repeats the single frame
    assert (sample.chunks == sample.chunks[0, 0]).all()
    assert (sample.fragment_indices == 0).all()


def test_16x16_video(vdir):
    path = make_video(vdir / "tiny.mp4", width=16, height=16, n_frames=8)
    info = probe(path)
    assert (info.width, info.height) == (16, 16)
    sample = sample_video(path, keyframes=True, keyframes_384=True, chunks=True, fragments=True)
    assert sample.keyframes[0].shape == (16, 16, 3)
    assert sample.keyframes_384[0].shape == (384, 384, 3)
    assert sample.chunks.shape == (8, 32, 224, 224, 3)
    assert sample.fragments.shape == (4, 32, 224, 224, 3)


def test_odd_width_and_height(vdir):
    path = make_video(vdir / "odd.mp4", width=33, height=17, n_frames=5, pix_fmt="yuv444p")
    info = probe(path)
    assert (info.width, info.height, info.pix_fmt) == (33, 17, "yuv444p")
    frames = [f for _, f in iter_frames(path)]
    assert len(frames) == 5 and frames[0].shape == (17, 33, 3)
    assert next(iter_frames(path, fmt="gray"))[1].shape == (17, 33)
    sample = sample_video(path, keyframes_384=True)
    assert sample.keyframes_384[0].shape == (384, int(384 / 17 * 33), 3)


def test_10bit_hevc_is_converted_not_truncated(vdir):
    # 4:4:4 so that the fine synthetic stripes survive and the colour error measures only the conversion
    path = make_video(
        vdir / "ten.mkv", width=64, height=48, n_frames=3, codec="libx265", pix_fmt="yuv444p10le", crf=4
    )
    info = probe(path)
    assert (info.bit_depth, info.pix_fmt, info.codec) == (10, "yuv444p10le", "hevc")
    assert info.container_frame_count is None and info.frame_count == 3  # MKV stores no count
    rgb = next(iter_frames(path))[1]
    assert rgb.dtype == np.uint8
    source = render_frame(0, 64, 48, 30.0)
    # colour-converted by swscale: close to what was encoded (truncated raw data would be far off)
    assert np.abs(rgb.astype(int) - source).mean() < 2.5
    gray = next(iter_frames(path, fmt="gray"))[1]
    import av

    with av.open(str(path)) as container:
        plane = next(container.decode(video=0)).planes[0]
        y10 = np.frombuffer(plane, np.uint16).reshape(plane.height, -1)[:, : plane.width]
    assert np.abs(gray.astype(float) - y10 / 4.0).max() <= 1.0
    assert y10.max() > 255  # really 10-bit samples


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_portrait_comes_out_upright(vdir, rotation):
    path = make_video(
        vdir / f"rot{rotation}.mp4",
        width=64,
        height=48,
        n_frames=3,
        rotation=rotation,
        pix_fmt="yuv444p",
        crf=10,
    )
    info = probe(path)
    assert info.rotation == rotation % 360
    expected_size = (48, 64) if rotation % 180 else (64, 48)
    assert (info.width, info.height) == expected_size
    frames = [f for _, f in iter_frames(path)]
    assert frames[0].shape == (info.height, info.width, 3)
    # OpenCV applies the display matrix itself: the official pipeline sees these exact pixels
    for ours, ref in zip(frames, cv2_frames(path), strict=True):
        np.testing.assert_array_equal(ours, ref)
    source = render_frame(0, 64, 48, 30.0)
    upright = np.rot90(source, k=(rotation % 360) // 90)
    wrong = np.rot90(source, k=(rotation % 360) // 90 + 2)  # the same shape, upside down
    assert np.abs(frames[0].astype(int) - upright).mean() < 4
    assert np.abs(frames[0].astype(int) - wrong).mean() > 20
    gray = next(iter_frames(path, fmt="gray"))[1]
    assert gray.shape == (info.height, info.width)


def test_variable_frame_rate(vdir):
    times = [0.0, 0.033, 0.066, 0.2, 0.25, 0.5, 0.51, 0.52, 1.0, 1.1, 1.5, 1.6, 1.9, 2.0]
    path = make_video(vdir / "vfr.mp4", width=64, height=48, frame_times=times)
    info = probe(path)
    cap = cv2.VideoCapture(str(path))
    # the official code's rate: OpenCV's CAP_PROP_FPS (FFmpeg's average rate)
    assert float(info.frame_rate) == pytest.approx(cap.get(cv2.CAP_PROP_FPS), rel=1e-9)
    cap.release()
    assert info.frame_count == len(times)
    ours = [f for _, f in iter_frames(path)]
    ref = cv2_frames(path)
    assert len(ours) == len(ref) == len(times)  # index i is the i-th decoded frame in both
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    sample = sample_video(path, keyframes=True)
    step = info.fps_int
    assert sample.keyframe_indices[:2] == [0, step]
    np.testing.assert_array_equal(sample.keyframes[1], ref[step])


def test_fps_below_one(vdir):
    path = make_video(vdir / "slow.mp4", width=64, height=48, fps=Fraction(1, 2), n_frames=5)
    info = probe(path)
    assert info.frame_rate == Fraction(1, 2)
    assert info.fps_int == 0  # round(0.5) = 0, as upstream's int(round(fps))
    assert info.duration == pytest.approx(10.0, abs=0.01)
    sample = sample_video(path, keyframes=True, chunks=True)
    # upstream: every frame is a key frame; 10 chunks starting at frame 0
    assert sample.keyframe_indices == [0, 1, 2, 3, 4, 4, 4, 4]
    assert sample.chunk_ranges == [(0, 5)] * 10
    assert sample.chunks.shape == (10, 32, 224, 224, 3)


def test_path_with_spaces_and_non_ascii(vdir):
    folder = vdir / "dossier vidéo 日本"
    folder.mkdir()
    path = make_video(folder / "clip é 動画.mp4", width=64, height=48, n_frames=4)
    info = probe(path)
    assert info.path == str(path) and info.frame_count == 4
    assert len(list(iter_frames(path))) == 4
    with pytest.raises(VideoError) as err:
        probe(folder / "absent ü.mp4")
    assert str(folder / "absent ü.mp4") in str(err.value)


def test_real_konvid_clip_matches_the_official_reader(shared_data):
    """KoNViD-1k 5115335471: 960x540, 29.97 fps, 240 frames -> key frames 0..210, chunk 7 padded with 2."""
    path = shared_data / "videos" / "5115335471.mp4"
    info = probe(path)
    assert (info.width, info.height, info.frame_count, info.fps_int) == (960, 540, 240, 30)
    assert info.frame_rate == Fraction(30000, 1001)
    sample = sample_video(path, keyframes=True, keyframes_384=True, chunks=True)
    assert sample.keyframe_indices == list(range(0, 240, 30))
    assert sample.keyframes_384[0].shape == (384, 682, 3)
    assert sample.chunk_ranges[7] == (210, 240)
    resize = transforms.Resize([224, 224])  # the official SlowFast transform on PIL images
    cap = cv2.VideoCapture(str(path))
    wanted = dict(zip(sample.keyframe_indices, sample.keyframes, strict=True))
    for index in range(240):
        ok, frame = cap.read()
        assert ok
        if index in (0, 61, 239):
            chunk_frame = np.asarray(resize(Image.fromarray(frame[..., ::-1].copy())))
            row, t = {0: (0, 0), 61: (1, 31), 239: (7, 29)}[index]
            np.testing.assert_array_equal(sample.chunks[row, t], chunk_frame)
            if index == 239:  # the 2 padded positions repeat the last frame
                np.testing.assert_array_equal(sample.chunks[7, 31], chunk_frame)
        if index in wanted:
            np.testing.assert_array_equal(wanted[index], frame[..., ::-1])
            # the official 384p extraction: cv2.resize on the BGR frame
            small = cv2.resize(frame, (682, 384), interpolation=cv2.INTER_LINEAR)[..., ::-1]
            np.testing.assert_array_equal(sample.keyframes_384[index // 30], small)
    cap.release()

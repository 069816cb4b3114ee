"""Hostile videos that cost memory and time before any frame is scored (issue 19, items 4, 6, 8): forged
sample indexes refused before FFmpeg opens the file, frames too elongated for short-side scaling, and a frame
size that changes mid-stream. The files are written here, a few KB each."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rqvqa.cli import main
from rqvqa.errors import UnmeasurableError, VideoError
from rqvqa.video import containers, reader
from rqvqa.video.decode import Decoder
from rqvqa.video.reader import SizeChanges, decode_frames, probe, video_limits
from rqvqa.video.sampling import MAX_ASPECT, Sampling, sample_video
from rqvqa.video.synth import (
    forge_fragment_run,
    make_video,
    render_frame,
    write_frames,
    write_raw_mov,
)

FORGED = "a forged index, refused before decoding"


def _frames(n: int = 2, size: int = 16) -> list[np.ndarray]:
    return [render_frame(i, size, size, 10.0) for i in range(n)]


@pytest.fixture
def no_ffmpeg_open(monkeypatch):
    """Fail the test if FFmpeg is asked to open a file (the check must refuse it first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("FFmpeg opened a file the index check should have refused")

    monkeypatch.setattr(reader.av, "open", refuse)


# ----------------------------------------------------------------------------- item 6: forged sample index


def test_raw_mov_written_box_by_box_decodes_exactly(tmp_path):
    frames = _frames(3)
    path = write_raw_mov(tmp_path / "honest.mov", frames)
    info = probe(path)
    assert (info.width, info.height, info.frame_count, info.codec) == (16, 16, 3, "rawvideo")
    decoded = [reader.frame_to_rgb(f) for _, f in decode_frames(path)]
    np.testing.assert_array_equal(np.stack(decoded), np.stack(frames))


def test_sample_tables_claiming_85m_samples_are_refused_before_ffmpeg_opens(tmp_path, no_ffmpeg_open):
    path = write_raw_mov(tmp_path / "bomb.mov", _frames(), claimed_samples=85_000_000)
    assert path.stat().st_size < 2500
    with pytest.raises(VideoError) as caught:
        probe(path)
    assert caught.value.reason == (
        f"its sample tables claim 85000000 samples in the video track, more than the {path.stat().st_size}-"
        f"byte file can hold ({FORGED})"
    )


def test_a_compressed_movie_header_is_unpacked_and_checked(tmp_path, monkeypatch):
    honest = write_raw_mov(tmp_path / "cmov.mov", _frames(3), compressed_header=True)
    assert b"cmov" in honest.read_bytes() and probe(honest).frame_count == 3  # FFmpeg reads it too
    forged = write_raw_mov(
        tmp_path / "bomb.mov", _frames(), claimed_samples=85_000_000, compressed_header=True
    )
    monkeypatch.setattr(reader.av, "open", None)  # never reached
    with pytest.raises(VideoError, match=f"claim 85000000 samples in the video track, .*{FORGED}"):
        probe(forged)
    monkeypatch.setattr(containers, "MAX_MOVIE_HEADER", 100)  # the honest header unpacks to more
    with pytest.raises(
        VideoError, match=f"compressed movie header unpacks to more than 100 bytes .*{FORGED}"
    ):
        probe(honest)


def test_a_claim_that_fits_the_file_is_held_to_the_frame_limit(tmp_path, no_ffmpeg_open):
    path = write_raw_mov(tmp_path / "claims_1000.mov", _frames(), claimed_samples=1000)
    assert path.stat().st_size > 1000  # so only the frame limit can refuse it
    with video_limits(max_frames=999), pytest.raises(VideoError, match="over the limit of 999 frames"):
        probe(path)


def test_a_table_whose_entries_cannot_fit_the_file_is_refused(tmp_path, no_ffmpeg_open):
    data = write_raw_mov(tmp_path / "honest.mov", _frames()).read_bytes()
    at = data.index(b"stco") + 8  # after the type, the version and flags: the entry count
    forged = tmp_path / "stco.mov"
    forged.write_bytes(data[:at] + struct.pack(">I", 1_000_000_000) + data[at + 4 :])
    with pytest.raises(VideoError, match=f"its stco table claims 1000000000 entries, .*{FORGED}"):
        probe(forged)


def test_a_forged_fragment_run_is_refused(tmp_path):
    frames = [render_frame(i, 32, 32, 10.0) for i in range(4)]
    honest = write_frames(tmp_path / "frag.mp4", frames, codec="mpeg4", pix_fmt="yuv420p", fragmented=True)
    assert probe(honest).frame_count == 4  # a fragmented file passes the check
    forged = forge_fragment_run(honest, tmp_path / "trun.mp4", 20_000_000)
    with pytest.raises(VideoError, match=f"claim 20000000 samples in the video track, .*{FORGED}"):
        probe(forged)


def test_an_edit_list_repeating_the_clip_past_the_frame_limit_is_refused(tmp_path, no_ffmpeg_open):
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(100)]
    path = write_raw_mov(tmp_path / "edits.mov", frames, repeats=11)  # 1,100 index entries
    with video_limits(max_frames=1000), pytest.raises(VideoError) as caught:
        probe(path)
    assert caught.value.reason == (
        "its edit list repeats the 100 samples of the video track into more than 1000 index entries, "
        "over the frame limit (refused before decoding)"
    )


def test_an_edit_list_within_the_limit_plays_every_edit(tmp_path):
    frames = [np.full((2, 2, 3), 40 * i, np.uint8) for i in range(3)]
    path = write_raw_mov(tmp_path / "edits.mov", frames, repeats=2)
    with video_limits(max_frames=6):
        values = [int(reader.frame_to_rgb(f)[0, 0, 0]) for _, f in decode_frames(path)]
    assert values == [0, 40, 80, 0, 40, 80]


def test_ordinary_mp4_and_mov_files_pass_the_check(tmp_path):
    for name, options in [("a.mp4", {}), ("b.mov", {"faststart": True}), ("c.mp4", {"codec": "libx265"})]:
        path = make_video(tmp_path / name, width=64, height=48, n_frames=12, **options)
        assert probe(path).frame_count == 12


def test_forged_index_row_in_predict(tmp_path, capsys):
    path = write_raw_mov(tmp_path / "bomb.mov", _frames(), claimed_samples=85_000_000)
    assert main(["predict", "--model", "brisque", "--json", str(path)]) == 1
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "error" and FORGED in row["error"]


# --------------------------------------------------------------------------------- item 8: extreme aspect


@pytest.fixture(scope="module")
def elongated(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("aspect")
    return {
        "wide": make_video(d / "wide_1024x16.mp4", width=1024, height=16, fps=10, n_frames=12),
        "tall": make_video(d / "tall_16x1024.mp4", width=16, height=1024, fps=10, n_frames=12),
    }


@pytest.mark.parametrize("kind", ["wide", "tall"])
def test_short_side_products_refuse_elongated_frames(elongated, kind):
    path = elongated[kind]
    size = "1024x16" if kind == "wide" else "16x1024"
    with pytest.raises(UnmeasurableError) as caught:
        sample_video(path, keyframes_384=True)
    assert caught.value.reason == (
        f"frames {size} are too elongated (64:1, at most {MAX_ASPECT}:1) for key frames at a 384-pixel short "
        "side: they would be 24576 px long"
    )
    with pytest.raises(UnmeasurableError, match="upsampled fragment frames at a 224-pixel short side"):
        sample_video(path, fragments=True)
    # native key frames are not scaled: still given
    info = probe(path)
    assert sample_video(path, keyframes=True).keyframes[0].shape[:2] == (info.height, info.width)


def test_aspect_limit_is_inclusive_and_spares_unscaled_fragments(tmp_path):
    at_limit = make_video(tmp_path / "8to1.mp4", width=256, height=32, fps=10, n_frames=10)
    assert sample_video(at_limit, keyframes_384=True).keyframes_384[0].shape == (384, 3072, 3)
    # a short side of 224 or more is not upsampled: the fragments read it as it is
    wide = write_frames(tmp_path / "wide.mkv", [np.zeros((224, 224 * 9, 3), np.uint8)] * 2, fps=10)
    assert sample_video(wide, fragments=True).fragments.shape[2:4] == (224, 224)


def test_elongated_clip_scored_by_models_that_do_not_scale_it(elongated, capsys):
    path = str(elongated["wide"])
    assert main(["predict", "--model", "brisque", "--json", path]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "ok"


# ------------------------------------------------------------------------- item 4: size change mid-stream


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    """Two H.264 transport-stream segments of different sizes, joined byte for byte (`cat a.ts b.ts`)."""
    d = tmp_path_factory.mktemp("joined")
    a = make_video(d / "a.ts", width=192, height=144, fps=10, n_frames=20)
    b = make_video(d / "b.ts", width=320, height=240, fps=10, n_frames=20, seed=1)
    path = d / "joined.ts"
    path.write_bytes(a.read_bytes() + b.read_bytes())
    with av.open(str(path)) as container:  # the file really changes size
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(192, 144), (320, 240)}
    return path


def test_frames_after_a_size_change_are_scaled_to_the_first_size(joined):
    changes = SizeChanges()
    frames = [f for _, f in decode_frames(joined, changes)]
    assert len(frames) == 40 and {(f.width, f.height) for f in frames} == {(192, 144)}
    assert (changes.first, changes.count, changes.sizes) == ((192, 144), 20, {(320, 240)})
    assert changes.note() == (
        "the frame size changes mid-stream: 20 frame(s) decoded at 320x240 were scaled to the first frame's "
        "192x144"
    )
    # the scaled frames keep their picture: a bilinear shrink of the decoded frame
    with av.open(str(joined)) as container:
        last = list(container.decode(video=0))[-1].to_ndarray(format="rgb24")
    scaled = reader.frame_to_rgb(frames[-1]).astype(int)
    expected = cv2.resize(last, (192, 144), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(scaled - expected).mean() < 4


def test_the_note_names_at_most_three_sizes():
    changes = SizeChanges((16, 16), 5, {(8, 8), (32, 32), (64, 64), (8, 16), (16, 8)})
    assert changes.note() == (
        "the frame size changes mid-stream: 5 frame(s) decoded at 8x8, 8x16, 16x8 and 2 more were scaled to "
        "the first frame's 16x16"
    )
    assert SizeChanges((16, 16)).note() is None


def test_every_sampler_takes_a_size_change(joined):
    decoded = Decoder((("s", Sampling(keyframes=True, keyframes_384=True, chunks=True, fragments=True)),))(
        joined
    )
    sample = decoded["s"]
    assert {k.shape for k in sample.keyframes} == {(144, 192, 3)}
    assert {k.shape for k in sample.keyframes_384} == {(384, 512, 3)}
    assert sample.chunks.shape[1:] == (32, 224, 224, 3) and sample.fragments.shape[2:] == (224, 224, 3)
    assert "320x240" in decoded.extra["frame_size"]


@pytest.mark.parametrize("model", ["lite", "videval-light", "brisque"])
def test_frame_models_score_a_size_change_and_say_so(joined, model, capsys):
    assert main(["predict", "--model", model, "--json", str(joined)]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "ok" and np.isfinite(row["score"])
    assert row["extra"]["frame_size"].startswith("the frame size changes mid-stream")


def test_a_file_without_a_size_change_has_no_note(tmp_path, capsys):
    path = make_video(tmp_path / "plain.mp4", width=192, height=144, fps=10, n_frames=12)
    assert main(["predict", "--model", "brisque", "--json", str(path)]) == 0
    assert "frame_size" not in json.loads(capsys.readouterr().out)[0]["extra"]


# -------------------------------------------------------------------- a network model on tiny random weights


@pytest.fixture(scope="module")
def tiny_liqe_predictor():
    from network_helpers import tiny_liqe

    from rqvqa.api import create_predictor

    return create_predictor("liqe", model=tiny_liqe())


def test_network_model_scores_a_size_change_and_says_so(tiny_liqe_predictor, joined):
    prediction = tiny_liqe_predictor.predict(joined)
    assert np.isfinite(prediction.score) and len(prediction.per_second) == 4
    assert prediction.extra["frame_size"].startswith(
        "the frame size changes mid-stream: 11 frame(s)"
    )  # up to frame 30


def test_liqe_refuses_to_upscale_elongated_frames(tiny_liqe_predictor, elongated):
    from rqvqa.families.liqe.network import prepare_frame

    with pytest.raises(
        UnmeasurableError, match="LIQE's upscaled frames at a 224-pixel short side: .* 14336 px"
    ):
        tiny_liqe_predictor.predict(elongated["wide"])
    # a short side of 224 is not upscaled: any aspect within the pixel budget is read as it is
    assert prepare_frame(np.zeros((224, 224 * 9, 3), np.uint8)).shape == (3, 224, 224 * 9)

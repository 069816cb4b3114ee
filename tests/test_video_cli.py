"""`rqvqa info`: good files processed, bad ones reported on one line each, non-zero exit, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest

from rqvqa.cli import main
from rqvqa.video.synth import make_audio_only, make_video


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    good = make_video(d / "good clip.mp4", width=64, height=48, fps=Fraction(30000, 1001), n_frames=40)
    rotated = make_video(d / "portrait.mp4", width=64, height=48, n_frames=5, rotation=90)
    text = d / "text.mp4"
    text.write_text("not a video")
    audio = make_audio_only(d / "audio.mp4", seconds=0.3)
    return {"good": good, "rotated": rotated, "text": text, "audio": audio, "missing": d / "missing.mp4"}


def test_info_json_several_files(files, capsys):
    paths = [files[k] for k in ("good", "text", "rotated", "missing", "audio")]
    code = main(["info", "--json", *map(str, paths)])
    out, err = capsys.readouterr()
    assert code == 1
    results = json.loads(out)
    assert [r["path"] for r in results] == [str(files["good"]), str(files["rotated"])]
    good, rotated = results
    assert good["frame_rate"] == "30000/1001" and good["fps_int"] == 30 and good["frame_count"] == 40
    assert good["plan"]["keyframe_indices"] == [0, 30] + [30] * 6
    assert good["plan"]["chunk_ranges"] == [[0, 32]] * 8  # floor(40/30) = 1 chunk, repeated
    assert (rotated["width"], rotated["height"], rotated["rotation"]) == (48, 64, 90)
    lines = err.strip().splitlines()
    assert len(lines) == 3
    reason = "not a readable video file (Invalid data found when processing input)"
    assert lines[0] == f"rqvqa: error: {files['text']}: {reason}"
    assert lines[1] == f"rqvqa: error: {files['missing']}: file not found"
    assert lines[2] == f"rqvqa: error: {files['audio']}: no video stream (only audio)"


def test_info_full_mode_table(files, capsys):
    code = main(["info", "--mode", "full", str(files["good"])])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "key frames (full)" in out and "0, 30" in out
    assert "0-31, 30-39+22" in out  # the second chunk has 10 real frames and 22 padded


@pytest.mark.slow  # a fresh interpreter imports every sub-command's module
def test_info_subprocess_no_traceback(files):
    cmd = [sys.executable, "-m", "rqvqa", "info", str(files["good"]), str(files["text"])]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr + run.stdout
    assert str(files["good"]) in run.stdout
    assert run.stderr.count("\n") == 1 and "not a readable video file" in run.stderr

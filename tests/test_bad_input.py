"""A corpus of bad and unusual inputs, generated here, run through `info`, `predict` (lite, brisque, niqe)
and `extract` (the weight-free `stats` source): no traceback, no NaN, strict JSON, every input present with
its status, the good files still scored, the exit code non-zero, and the documented reason where one is
promised. A fast subset runs by default; the whole corpus (and the memory bound) under the `slow` marker.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rqvqa.cli import main
from rqvqa.video.synth import (
    corrupt_file,
    forge_fragment_run,
    make_audio_only,
    make_video,
    render_frame,
    truncate_file,
    write_frames,
    write_raw_mov,
)

MODELS = ("lite", "brisque", "niqe")
#: an error reason that is a Python exception's name, not a sentence for a user ("ZeroDivisionError: ...")
INTERNAL = re.compile(r"\b[A-Z]\w*(Error|Exception)\b: ")


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]
    #: command ("info", a model, "extract") or "*" -> "ok", or a substring the error reason must hold
    expect: dict[str, str] = field(default_factory=dict)
    fast: bool = False

    def expected(self, command: str) -> str | None:
        return self.expect.get(command, self.expect.get("*"))


# --------------------------------------------------------------------------------------------- builders


def _clip(d: Path, name: str, **kwargs) -> Path:
    options = {"width": 192, "height": 144, "fps": 10, "n_frames": 25, "crf": 23, **kwargs}
    return make_video(d / name, **options)


def _frames(d: Path, name: str, frames, **kwargs) -> Path:
    return write_frames(d / name, frames, **kwargs)


def _black(h: int, w: int, n: int) -> list[np.ndarray]:
    return [np.zeros((h, w, 3), np.uint8)] * n


def _textured(h: int, w: int, n: int, fps: float = 10.0) -> list[np.ndarray]:
    return [render_frame(i, w, h, fps) for i in range(n)]


def _y4m(d: Path, name: str, header: str, payload: int = 64) -> Path:
    """A YUV4MPEG2 file whose text header claims what it likes, followed by a little pixel data."""
    path = d / name
    path.write_bytes(f"YUV4MPEG2 {header}\nFRAME\n".encode() + bytes(payload))
    return path


def _good(d: Path) -> Path:
    return _clip(d, "good.mp4")


def _flip(d: Path, name: str, offset: int | float, count: int = 16) -> Path:
    """Good clip with `count` bytes XOR-ed from `offset` (bytes, or a fraction of the file)."""
    data = bytearray(_good(d).read_bytes())
    start = int(len(data) * offset) if isinstance(offset, float) else offset
    for k in range(start, min(start + count, len(data))):
        data[k] ^= 0xA5
    (d / name).write_bytes(bytes(data))
    return d / name


def _two_video_streams(d: Path) -> Path:
    path = d / "two_streams.mkv"
    with av.open(str(path), "w") as container:
        streams = [container.add_stream("ffv1", rate=10) for _ in range(2)]
        for k, stream in enumerate(streams):
            stream.width, stream.height, stream.pix_fmt = 160 + 32 * k, 128, "yuv420p"
        for i in range(20):
            for k, stream in enumerate(streams):
                frame = av.VideoFrame.from_ndarray(render_frame(i, 160 + 32 * k, 128, 10.0, seed=k), "rgb24")
                container.mux(stream.encode(frame))
        for stream in streams:
            container.mux(stream.encode())
    return path


def _gif(d: Path) -> Path:
    from PIL import Image

    images = [Image.fromarray(f) for f in _textured(120, 160, 15)]
    path = d / "anim.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


def _png(d: Path) -> Path:
    from PIL import Image

    path = d / "still.png"
    Image.fromarray(render_frame(0, 200, 150, 10.0)).save(path)
    return path


def _fifo(d: Path) -> Path:
    path = d / "pipe.mp4"
    os.mkfifo(path)
    return path


def _link(d: Path, name: str, target: str) -> Path:
    path = d / name
    path.symlink_to(target)
    return path


def _loop(d: Path) -> Path:
    _link(d, "loop_b.mp4", "loop_a.mp4")
    return _link(d, "loop_a.mp4", "loop_b.mp4")


def _directory(d: Path) -> Path:
    (d / "folder.mp4").mkdir()
    return d / "folder.mp4"


def _huge_h264(d: Path) -> Path:
    """A one-frame 8192x8192 black clip at CRF 51: a few hundred KB that claims 67 Mpixel frames."""
    frames = [np.zeros((8192, 8192, 3), np.uint8)]
    return write_frames(d / "huge_8192.mp4", frames, codec="libx264", crf=51)


def _forged_mov(d: Path) -> Path:
    """A 2 KB raw QuickTime file whose sample tables claim 85 M samples (an index bomb)."""
    frames = [render_frame(i, 16, 16, 10.0) for i in range(2)]
    return write_raw_mov(d / "forged_85M.mov", frames, claimed_samples=85_000_000)


def _forged_trun(d: Path) -> Path:
    frames = [render_frame(i, 32, 32, 10.0) for i in range(4)]
    honest = write_frames(d / "frag.mp4", frames, codec="mpeg4", pix_fmt="yuv420p", fragmented=True)
    return forge_fragment_run(honest, d / "forged_trun.mp4", 20_000_000)


def _joined_ts(d: Path) -> Path:
    """Two H.264 TS segments of different frame sizes joined byte for byte: the size changes mid-stream."""
    a, b = _clip(d, "a.ts"), _clip(d, "b.ts", width=320, height=240, seed=1)
    (d / "joined.ts").write_bytes(a.read_bytes() + b.read_bytes())
    return d / "joined.ts"


def _fade(n_content: int, n_black: int, black_first: bool, h=144, w=192) -> list[np.ndarray]:
    content = _textured(h, w, n_content)
    if black_first:
        return _black(h, w, n_black) + content
    ramp = [(f * (1 - k / n_black)).astype(np.uint8) for k, f in enumerate(_textured(h, w, n_black))]
    return content + ramp


NOT_READABLE = "not a readable video file"
TRUNCATED = "truncated or damaged"
LIMIT = "over the limit"
UNMEASURABLE = "no measurable content"
OK = {"*": "ok"}
#: flat content (contract 1): `info` describes it, every frame model says it has nothing to measure
FLAT = {"info": "ok", **{m: UNMEASURABLE for m in MODELS}}
#: frames below NIQE's 96x96 blocks: NIQE names its minimum
TOO_SMALL = {"info": "ok", "niqe": "96"}
FORGED = "a forged index, refused before decoding"
#: frames too elongated for the 384 key frames of `extract`; BRISQUE still scores them
ELONGATED = {"info": "ok", "brisque": "ok", "niqe": "96", "lite": "64x64", "extract": "too elongated (64:1"}


def _fs_clip(d: Path) -> Path:
    return _clip(d, "faststart.mp4", faststart=True)


CASES: list[Case] = [
    # ---- good or merely unusual files: scored
    Case("good", _good, OK, fast=True),
    Case("lossless", lambda d: _frames(d, "lossless.mkv", _textured(192, 288, 25), fps=10), OK),
    Case("hevc", lambda d: _clip(d, "hevc.mkv", codec="libx265", crf=28), OK),
    Case("ten_bit", lambda d: _clip(d, "ten_bit.mp4", pix_fmt="yuv420p10le"), OK, fast=True),
    Case("rotated", lambda d: _clip(d, "rotated.mp4", rotation=90), OK),
    Case("odd_size", lambda d: _clip(d, "odd.mp4", width=193, height=145, pix_fmt="yuv444p"), OK),
    Case("vfr", lambda d: _clip(d, "vfr.mkv", frame_times=[0.13 * k**1.3 for k in range(25)]), OK),
    Case("ntsc_short", lambda d: _clip(d, "ntsc.mp4", fps=Fraction(30000, 1001), n_frames=12), OK),
    # lite (VIDEVAL_light) needs 4 frames: a shorter clip is its one-line error, the frame models score it
    Case("one_frame", lambda d: _clip(d, "one_frame.mp4", n_frames=1), {**OK, "lite": "too short: 1 frames"}),
    Case(
        "one_fps", lambda d: _clip(d, "one_fps.mp4", fps=1, n_frames=3), {**OK, "lite": "too short: 3 frames"}
    ),
    Case("noisy", lambda d: _clip(d, "noisy.mp4", noise=40.0, crf=40), OK),
    Case(
        "mjpeg", lambda d: _frames(d, "mjpeg.avi", _textured(144, 192, 20), codec="mjpeg", pix_fmt="yuvj420p")
    ),
    Case("gif", _gif, {"info": "ok"}, fast=True),
    Case("png", _png, {"info": "ok"}),
    Case("two_video_streams", _two_video_streams, {"info": "ok"}),
    Case("size_160x120", lambda d: _clip(d, "160x120.mp4", width=160, height=120), {"info": "ok"}),
    # ---- frames too small for a model: an error naming why, never NaN
    Case("tiny_2x2", lambda d: _frames(d, "2x2.mkv", _textured(2, 2, 20), fps=10), TOO_SMALL, fast=True),
    Case("tiny_16x16", lambda d: _clip(d, "16x16.mp4", width=16, height=16, pix_fmt="yuv444p"), TOO_SMALL),
    Case("small_80x60", lambda d: _clip(d, "80x60.mp4", width=80, height=60), TOO_SMALL),
    # ---- flat content (contract 1): unmeasurable seconds skipped, nothing measurable is an error
    Case("all_black", lambda d: _frames(d, "black.mkv", _black(144, 192, 25), fps=10), FLAT, fast=True),
    Case("all_black_h264", lambda d: _frames(d, "black.mp4", _black(144, 192, 25), codec="libx264"), FLAT),
    Case("flat_grey", lambda d: _frames(d, "grey.mkv", [np.full((144, 192, 3), 128, np.uint8)] * 20), FLAT),
    Case("black_intro", lambda d: _frames(d, "intro.mkv", _fade(25, 15, True), fps=10), OK, fast=True),
    Case(
        "fade_to_black", lambda d: _frames(d, "fade.mp4", _fade(20, 20, False), codec="libx264", fps=10), OK
    ),
    # ---- claims over the limits: refused from the headers, in milliseconds
    Case("huge_h264_8192", _huge_h264, {"*": LIMIT}),
    Case(
        "y4m_16384x8192", lambda d: _y4m(d, "claims_16k.y4m", "W16384 H8192 F30:1"), {"*": LIMIT}, fast=True
    ),
    Case("y4m_65536x2", lambda d: _y4m(d, "claims_wide.y4m", "W65536 H2 F30:1"), {"*": LIMIT}),
    Case(
        "y4m_absurd_rate", lambda d: _y4m(d, "claims_rate.y4m", "W64 H64 F1000000:1", 64 * 96), {"*": LIMIT}
    ),
    Case(
        "absurd_duration",
        lambda d: _clip(d, "long.mkv", frame_times=[0.0, 0.1, 1e7]),
        {"*": LIMIT},
        fast=True,
    ),
    # ---- index bombs (refused before FFmpeg opens them), extreme aspect ratios, a size change mid-stream
    Case("forged_mov_85M_samples", _forged_mov, {"*": FORGED}, fast=True),
    Case("forged_fragment_run", _forged_trun, {"*": FORGED}),
    Case(
        "forged_compressed_header",
        lambda d: write_raw_mov(
            d / "cmov.mov",
            [render_frame(0, 16, 16, 10.0)],
            claimed_samples=85_000_000,
            compressed_header=True,
        ),
        {"*": FORGED},
    ),
    Case(
        "edit_list_repeats",
        lambda d: write_raw_mov(d / "edits.mov", _textured(2, 2, 2000), fps=1000, repeats=5001),
        {"*": "its edit list repeats the 2000 samples"},
    ),
    Case("wide_1024x16", lambda d: _clip(d, "wide.mp4", width=1024, height=16, n_frames=12), ELONGATED),
    Case(
        "tall_16x1024",
        lambda d: _clip(d, "tall.mp4", width=16, height=1024, n_frames=12),
        ELONGATED,
        fast=True,
    ),
    Case("joined_ts_size_change", _joined_ts, OK, fast=True),
    # ---- not videos at all
    Case("missing", lambda d: d / "missing.mp4", {"*": "file not found"}, fast=True),
    Case("empty", lambda d: _truncate_bytes(_good(d), 0), {"*": "empty file (0 bytes)"}),
    Case(
        "text", lambda d: _write(d, "text.mp4", b"hello, not a video\n" * 20), {"*": NOT_READABLE}, fast=True
    ),
    Case("random_bytes", lambda d: _write(d, "random.mp4", _random(4096)), {"*": NOT_READABLE}),
    # predict looks inside a folder: an empty one is "no video file in this folder"; a file reader names it
    Case("directory", _directory, {"*": "is a directory", **dict.fromkeys(MODELS, "no video file in this")}),
    Case("fifo", _fifo, {"*": "named pipe"}, fast=True),
    Case("char_device", lambda d: Path("/dev/urandom"), {"*": "character device"}),
    Case("proc_file", lambda d: Path("/proc/self/status"), {"*": "virtual file"}),
    Case("symlink_loop", _loop, {"*": "symbolic link loop"}),
    Case("broken_symlink", lambda d: _link(d, "dangling.mp4", "nowhere.mp4"), {"*": "broken symbolic link"}),
    Case(
        "audio_only",
        lambda d: make_audio_only(d / "voice.mp4", seconds=0.5),
        {"*": "no video stream (only audio)"},
    ),
    # ---- damaged files: truncations at several offsets, byte flips in the header and the payload
    Case("truncated_40b", lambda d: _truncate_bytes(_good(d), 40), {"*": TRUNCATED}),
    Case(
        "truncated_mkv_60b",
        lambda d: _truncate_bytes(_frames(d, "t.mkv", _textured(144, 192, 5)), 60),
        {"*": TRUNCATED},
    ),
    Case("truncated_in_trak", lambda d: _truncate_bytes(_fs_clip(d), 160), {"*": "header is truncated"}),
    Case("truncated_10pct", lambda d: truncate_file(_good(d), d / "trunc_10.mp4", 0.1), {"*": TRUNCATED}),
    Case("truncated_50pct_faststart", lambda d: truncate_file(_fs_clip(d), d / "t50.mp4", 0.5)),
    Case("truncated_90pct_faststart", lambda d: truncate_file(_fs_clip(d), d / "t90.mp4", 0.9), fast=True),
    Case("flip_header_8", lambda d: _flip(d, "flip_8.mp4", 8), fast=True),
    Case("flip_header_60", lambda d: _flip(d, "flip_60.mp4", 60)),
    Case("flip_payload_30pct", lambda d: _flip(d, "flip_p30.mp4", 0.3, 64)),
    Case(
        "garbage_payload_50pct", lambda d: corrupt_file(_good(d), d / "garbage_50.mp4", 0.5, 2000), fast=True
    ),
    Case("garbage_most", lambda d: corrupt_file(_good(d), d / "garbage_most.mp4", 0.05, 1_000_000)),
]


def _write(d: Path, name: str, data: bytes) -> Path:
    (d / name).write_bytes(data)
    return d / name


def _random(n: int) -> bytes:
    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()


def _truncate_bytes(path: Path, keep: int) -> Path:
    out = path.with_name(f"trunc_{keep}b{path.suffix}")
    out.write_bytes(path.read_bytes()[:keep])
    return out


def _build(d: Path, cases: list[Case]) -> list[tuple[Case, Path]]:
    built = []
    for case in cases:
        sub = d / case.name
        sub.mkdir(parents=True)
        built.append((case, case.build(sub)))
    return built


# ------------------------------------------------------------------------------------------------ checks


def _reason_problem(case: Case, command: str, status: str, error: str | None) -> str | None:
    """What is wrong with a case's outcome under `command` (None: nothing)."""
    expected = case.expected(command)
    where = f"{case.name} / {command}"
    if status == "error":
        if not error or "\n" in error or "Traceback" in error:
            return f"{where}: not a one-line reason: {error!r}"
        if INTERNAL.search(error):
            return f"{where}: an internal error reached the user: {error}"
    if expected == "ok" and status != "ok":
        return f"{where}: expected a result, got: {error}"
    if expected not in (None, "ok") and (status != "error" or expected not in error):
        return f"{where}: expected an error with {expected!r}, got {status}: {error}"
    return None


Outcome = tuple[str, str | None]  # (status, error)


def _predict(model: str, paths: list[str], capsys) -> list[Outcome]:
    code = main(["predict", "--model", model, "--json", *paths])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "NaN" not in out and "Infinity" not in out
    rows = json.loads(out)
    assert [r["path"] for r in rows] == paths  # every input, in order, failed ones included
    failed = sum(r["status"] == "error" for r in rows)
    assert code == (1 if failed else 0) and (not failed or f"{failed} of {len(paths)} file(s) failed" in err)
    for row in rows:
        if row["status"] == "ok":
            assert math.isfinite(row["score"]) and row["error"] is None
            assert all(s is None or math.isfinite(s) for s in row["per_second"])
        else:
            assert row["status"] == "error" and row["score"] is None and row["error"].startswith(row["path"])
    return [(r["status"], r["error"]) for r in rows]


def _info(paths: list[str], capsys) -> list[Outcome]:
    code = main(["info", "--json", *paths])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "NaN" not in out
    described = {r["path"] for r in json.loads(out)}
    errors = [line.removeprefix("rqvqa: error: ") for line in err.splitlines()]
    assert len(errors) == len(paths) - len(described) and code == (1 if errors else 0)
    return [
        ("ok", None) if p in described else ("error", next(e for e in errors if e.startswith(f"{p}: ")))
        for p in paths
    ]


def _extract(built: list[tuple[Case, Path]], tmp: Path, capsys) -> list[Outcome]:
    manifest = tmp / "corpus.csv"
    manifest.write_text("\n".join(["video,mos,group", *(f"{p},3,{c.name}" for c, p in built)]) + "\n")
    argv = ["extract", str(manifest), "--sources", "stats", "--store", str(tmp / "store"), "--no-progress"]
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    report = json.loads(out)
    failed = {f["video"]: f["error"] for f in report["failed"]}
    assert report["done"] + len(failed) == len(built) and code == (1 if failed else 0)
    return [("error", failed[str(p)]) if str(p) in failed else ("ok", None) for _, p in built]


def _run_corpus(cases: list[Case], tmp: Path, capsys) -> None:
    built = _build(tmp / "corpus", cases)
    paths = [str(p) for _, p in built]
    outcomes = {"info": _info(paths, capsys), "extract": _extract(built, tmp, capsys)}
    outcomes.update({model: _predict(model, paths, capsys) for model in MODELS})
    problems = [
        problem
        for command, results in outcomes.items()
        for (case, _), (status, error) in zip(built, results, strict=True)
        if (problem := _reason_problem(case, command, status, error))
    ]
    assert not problems, "\n".join(problems)


def test_corpus_has_the_promised_kinds():
    assert len({c.name for c in CASES}) == len(CASES) >= 40
    assert sum(c.fast for c in CASES) >= 10


def test_fast_corpus(tmp_path, capsys):
    _run_corpus([c for c in CASES if c.fast], tmp_path, capsys)


@pytest.mark.slow
def test_full_corpus(tmp_path, capsys):
    _run_corpus(CASES, tmp_path, capsys)


# ------------------------------------------------------------------------------------------------ extract


def test_extract_goes_on_after_any_exception_of_a_source(tmp_path, capsys):
    from typing import ClassVar

    from rqvqa.cli.extract import extract_manifest
    from rqvqa.data.manifest import read_manifest
    from rqvqa.source import FeatureSource, Granularity
    from rqvqa.store import FeatureStore, keyframe_tag

    class Fragile(FeatureSource):
        """Runs out of (GPU) memory on the second video, as a network source can."""

        name: ClassVar[str] = "fragile"
        dim: ClassVar[int] = 1
        granularity: ClassVar[Granularity] = Granularity.VIDEO
        needs: ClassVar[frozenset[str]] = frozenset({"keyframes"})

        def extract(self, sample):
            if "b.mp4" in sample.info.path:
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\nsee the documentation")
            return np.ones(1, np.float32)

    for name in ("a", "b", "c"):
        _clip(tmp_path, f"{name}.mp4", n_frames=12)
    (tmp_path / "m.csv").write_text("video,mos,group\na.mp4,1,a\nb.mp4,2,b\nc.mp4,3,c\n")
    store = FeatureStore(tmp_path / "st")
    report = extract_manifest(read_manifest(tmp_path / "m.csv"), [Fragile()], store, progress=False)
    assert report.done == 2 and report.failed == [
        {
            "video": "b.mp4",
            "error": f"{tmp_path / 'b.mp4'}: RuntimeError: CUDA out of memory. Tried to allocate 20.00 GiB",
        }
    ]
    assert store.has_keyframes("a", keyframe_tag()) and store.has_keyframes("c", keyframe_tag())
    assert not store.has_keyframes("b", keyframe_tag())  # nothing half-written for the failed video


def test_extract_without_sources_is_an_error_unless_keyframes_only(tmp_path, capsys):
    _clip(tmp_path, "a.mp4", n_frames=12)
    (tmp_path / "m.csv").write_text("video,mos,group\na.mp4,1,a\n")
    argv = ["extract", str(tmp_path / "m.csv"), "--store", str(tmp_path / "st"), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no --sources given" in err and "stats" in err and "--keyframes-only" in err
    assert not (tmp_path / "st").exists()  # refused before any work
    assert main([*argv, "--keyframes-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 1
    assert main([*argv, "--keyframes-only", "--sources", "stats"]) == 1
    assert "--keyframes-only takes neither" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- permissions


def test_folder_without_search_permission_is_a_clean_error(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    video = _clip(locked, "a.mp4", n_frames=5)
    if os.geteuid() != 0:  # root searches any folder: simulate what a user meets
        locked.chmod(0o600)
    else:
        real_stat = Path.stat

        def stat(self, *args, **kwargs):
            if self == video:
                raise PermissionError(13, "Permission denied", str(self))
            return real_stat(self, *args, **kwargs)

        monkeypatch.setattr(Path, "stat", stat)
    try:
        assert main(["predict", "--json", str(video)]) == 1
    finally:
        locked.chmod(0o700)
    row = json.loads(capsys.readouterr().out)[0]
    assert row["error"] == f"{video}: permission denied (a folder on the path cannot be searched)"


# ------------------------------------------------------------------------------------------------ memory


#: run as `python -c`: the rqvqa command, then its own peak resident memory (kB) on stderr's last line. The
#: process reads it itself: a parent's ru_maxrss would count the pages the child inherited at fork.
_MEASURED = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], "
    "file=sys.stderr)); sys.argv = ['rqvqa', *sys.argv[1:]]; runpy.run_module('rqvqa', run_name='__main__')"
)


def _peak_rss_mb(args: list[str]) -> tuple[float, int, str]:
    """Run `rqvqa ARGS` and return (its peak resident memory in MB, exit status, stdout)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    run = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args], capture_output=True, text=True, env=env, timeout=1800
    )
    return int(run.stderr.strip().splitlines()[-1]) / 1024, run.returncode, run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_memory_stays_bounded_over_the_corpus(model, tmp_path):
    from conftest import SHARED

    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc (Linux)")
    built = _build(tmp_path / "corpus", CASES)
    paths = [str(p) for _, p in built]
    real = SHARED / "data" / "videos" / "5115335471.mp4"
    if real.is_file():
        paths.append(str(real))
    # sequential: all the work in the measured process (the local engine would score in worker processes)
    peak, code, out = _peak_rss_mb(["predict", "--model", model, "--engine", "sequential", "--json", *paths])
    rows = json.loads(out)
    assert code == 1 and [r["path"] for r in rows] == paths
    assert all(r["status"] == "ok" for r in rows if r["path"] == str(real))
    print(f"peak RSS of `rqvqa predict --model {model}` over {len(paths)} files: {peak:.0f} MB")
    assert peak < 2048


# ------------------------------------------------------------------------------- names, manifests, huge

#: file names a user's folders hold: not UTF-8, rich markup, a newline, a carriage return, an escape
#: sequence, the Unicode line separator
ODD_NAMES = (
    os.fsdecode(b"bad\xff\xfe.mp4"),
    "a[/bold]b[red].mp4",
    "new\nline.mp4",
    "cr\rname.mp4",
    "esc\x1b[31mred\x1b[0m.mp4",
    "sep\u2028x.mp4",
)


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    good = _clip(folder, "good.mp4", n_frames=10)
    for name in ODD_NAMES:
        (folder / name).parent.mkdir(exist_ok=True)  # "a[" holds "bold]b[red].mp4"
        (folder / name).write_bytes(good.read_bytes())
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_odd_names_keep_their_rows_in_every_format(odd_names, tmp_path, suffix, capsys):
    from rqvqa.pipeline import read_results

    out = tmp_path / f"rows{suffix}"
    argv = ["predict", str(odd_names), "--out", str(out), "--engine", "sequential", "--no-diagnosis"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("7 video(s) in ")
    rows = read_results(out)
    expected = sorted([str(odd_names / n) for n in ODD_NAMES] + [str(odd_names / "good.mp4")])
    assert sorted(r["path"] for r in rows) == expected  # exactly one row per file, names exact
    assert all(r["status"] == "ok" for r in rows)
    # resume finds every one of them: nothing scored twice
    assert main([*argv, "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == len(expected)
    assert len(read_results(out)) == len(expected)


def test_odd_names_reach_the_terminal_escaped(odd_names, capsys):
    missing = [str(odd_names / f"gone{n}") for n in ODD_NAMES if "/" not in n]
    assert main(["predict", str(odd_names / ODD_NAMES[1]), *missing, "--engine", "sequential"]) == 1
    out, err = capsys.readouterr()
    # what the progress bar draws aside (its own carriage returns), the messages are one printable line each
    errors = [line[line.index("rqvqa: error:") :] for line in err.split("\n") if "rqvqa: error:" in line]
    for text in (out, *errors):
        assert "\x1b" not in text and "\r" not in text and "\u2028" not in text and "\udcff" not in text
    assert "a[/bold]b[red].mp4" in out  # shown as written, not read as markup
    assert len(errors) == len(missing)  # one line each: a newline in a name no longer cuts the reason
    assert all(line.endswith("file not found") for line in errors), errors
    assert "gonenew\\nline.mp4: file not found" in err and "gonebad\\xff\\xfe.mp4" in err
    for command in ("info", "diagnose"):  # the other tables that show names
        assert main([command, str(odd_names / ODD_NAMES[1]), str(odd_names / ODD_NAMES[4])]) == 0
        out = capsys.readouterr().out
        # (diagnose keeps the end of a long name)
        assert "bold]b[red].mp4" in out and "\x1b" not in out and "red\\x1b[0m.mp4" in out


def _manifests(d: Path) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = _clip(d, "good.mp4", n_frames=10)
    (d / "after.mp4").write_bytes(good.read_bytes())  # named only after the long cell
    (d / "long_cell.csv").write_text(f"video\n{good.name}\n{'x' * 200_000}\nafter.mp4\n")
    (d / "nul.csv").write_text(f"video\nb\x00.mp4\n{good.name}\n")
    pq.write_table(pa.table({"video": [1, 2]}), d / "integers.parquet")
    (d / "no_column.csv").write_text(f"name\n{good.name}\n")
    return [d / "long_cell.csv", d / "nul.csv", d / "integers.parquet", d / "no_column.csv", good]


def test_a_bad_manifest_is_an_error_row_naming_it_and_the_others_keep_theirs(tmp_path, capsys):
    inputs = _manifests(tmp_path)
    code = main(["predict", *map(str, inputs), "--engine", "sequential", "--json", "--no-diagnosis"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    rows = {r["path"]: r for r in json.loads(out)}
    assert rows[str(tmp_path / "good.mp4")]["status"] == "ok"  # named by two manifests and directly: once
    assert rows[str(tmp_path / "after.mp4")]["status"] == "ok"  # the manifest goes on after its long cell
    errors = {path: r["error"] for path, r in rows.items() if r["status"] == "error"}
    assert errors == {
        f"{tmp_path}/long_cell.csv:3": f"{tmp_path}/long_cell.csv: manifest line 3: the video cell is 200000 "
        "characters long (a path has at most 4096)",
        f"{tmp_path}/nul.csv:2": f"{tmp_path}/nul.csv: manifest line 2: the video cell holds a NUL byte",
        f"{tmp_path}/integers.parquet:1": f"{tmp_path}/integers.parquet: manifest row 1: the video column "
        "holds int64 values, not paths",
        str(tmp_path / "no_column.csv"): f"{tmp_path}/no_column.csv: manifest has no 'video' column",
    }
    assert len(rows) == 6
    import csv

    assert csv.field_size_limit() == 131072  # the parser's limit is raised only while a manifest is read


def test_the_content_key_of_a_huge_file_reads_a_bounded_sample(tmp_path, monkeypatch):
    from rqvqa.pipeline import keys

    monkeypatch.setattr(keys, "WHOLE_LIMIT", 4 * keys.BLOCK)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(8 * keys.BLOCK))
    size, key = keys.content_key(big)
    assert size == 8 * keys.BLOCK and key.startswith(keys.SAMPLED_PREFIX)
    with big.open("r+b") as handle:  # a change inside a sampled block changes the key
        handle.seek(5 * keys.BLOCK - 10)
        handle.write(b"x")
    assert keys.content_key(big)[1] != key
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert keys.content_key(small)[1].startswith(keys.KEY_PREFIX)


@pytest.mark.slow
def test_a_1_tb_sparse_file_is_refused_fast_and_does_not_block_the_batch(tmp_path, capsys):
    import time

    huge = tmp_path / "huge.mp4"
    subprocess.run(["truncate", "-s", "1T", str(huge)], check=True)
    good = _clip(tmp_path, "good.mp4", n_frames=10)
    start = time.monotonic()
    assert main(["predict", str(tmp_path), "--workers", "2", "--json", "--no-diagnosis"]) == 1
    seconds = time.monotonic() - start
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[str(good)]["status"] == "ok"
    assert rows[str(huge)]["status"] == "error" and "not a readable video file" in rows[str(huge)]["error"]
    assert rows[str(huge)]["content_key"].startswith("blake2b128-sampled:")
    assert seconds < 120, seconds  # before: over 300 s hashing the whole terabyte


def test_an_empty_or_text_only_folder_says_it_holds_no_video(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no video here")
    assert main(["predict", str(tmp_path / "empty"), str(tmp_path / "text"), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["error"].split(" (looked for")[0] for r in rows] == [
        f"{tmp_path / name}: no video file in this folder or below it" for name in ("empty", "text")
    ]

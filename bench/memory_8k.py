"""Peak memory and time of the offline models on 8K (7680x4320) clips, run as a user runs them (issue 19, 7).

Makes (once, into `--keep`) two 2-s 30-fps 8K H.264 clips (libx264, one thread, preset ultrafast): an
all-black one and a textured one (the repository's example clip upscaled, bicubic, with a fixed-seed luma
noise field so every block has detail), then runs `rqvqa predict --model M --json CLIP` under
`/usr/bin/time -v` for each model and prints peak RSS, wall and CPU seconds, and whether a row came back.
Goal: at most 2 GB each. The machine may be loaded by other jobs: CPU seconds are the comparable figure.

    python bench/memory_8k.py [--keep DIR] [--models niqe brisque ...] [--clips black textured]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "5115335471.mp4"
WIDTH, HEIGHT, FPS, SECONDS = 7680, 4320, 30, 2
MODELS = ["niqe", "brisque", "lite-v1", "lite", "videval-light"]


def make_clip(path: Path, kind: str) -> Path:
    if path.exists():
        return path
    from rqvqa.video.reader import decode_frames

    rng = np.random.default_rng(0)
    noise = rng.integers(-8, 9, (HEIGHT, WIDTH), dtype=np.int16)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "23", "threads": "1", "preset": "ultrafast"}
        frames = decode_frames(EXAMPLE)
        for _ in range(FPS * SECONDS):
            if kind == "black":
                frame = av.VideoFrame.from_ndarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8), format="rgb24")
                frame = frame.reformat(format="yuv420p")
            else:
                _, src = next(frames)
                frame = src.reformat(width=WIDTH, height=HEIGHT, format="yuv420p", interpolation="BICUBIC")
                y = frame.planes[0]
                luma = np.frombuffer(y, np.uint8).reshape(y.height, y.line_size)[:, :WIDTH]
                textured = np.clip(luma.astype(np.int16) + noise, 0, 255).astype(np.uint8)
                planes = [textured, *(_plane(p) for p in frame.planes[1:])]
                frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
                for dst, src_plane in zip(frame.planes, planes, strict=True):
                    view = np.frombuffer(dst, np.uint8).reshape(dst.height, dst.line_size)
                    view[:, : src_plane.shape[1]] = src_plane
            frame.pts = None
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.rename(path)
    return path


def _plane(p) -> np.ndarray:
    return np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]


def measure(model: str, clip: Path) -> dict:
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "rqvqa",
        "predict",
        "--model",
        model,
        "--json",
        str(clip),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())

    def field(name: str) -> float:
        m = re.search(rf"{name}: *([\d.:]+)", done.stderr)
        return _seconds(m.group(1)) if m else float("nan")

    try:
        rows = json.loads(done.stdout)
        row = rows[0] if isinstance(rows, list) else rows
        outcome = (
            f"score {row['score']:.3f}" if row.get("score") is not None else f"error: {row.get('error')}"
        )
    except (ValueError, KeyError, IndexError, TypeError):
        outcome = f"no JSON (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return {
        "peak_gb": field(r"Maximum resident set size \(kbytes\)") / 1024**2,
        "wall_s": field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)"),
        "cpu_s": field("User time \\(seconds\\)") + field("System time \\(seconds\\)"),
        "outcome": outcome,
    }


def _seconds(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    value = 0.0
    for p in parts:
        value = value * 60 + p
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="folder for the clips (default: temp)")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--clips", nargs="*", default=["black", "textured"])
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f}; {WIDTH}x{HEIGHT}, {SECONDS} s at {FPS} fps")
    print("| clip | model | peak RSS GB | wall s | CPU s | result |")
    print("|---|---|---|---|---|---|")
    for kind in args.clips:
        clip = make_clip(folder / f"8k_{kind}_{SECONDS}s.mp4", kind)
        for model in args.models:
            r = measure(model, clip)
            cells = [kind, f"`{model}`", f"{r['peak_gb']:.2f}", f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}"]
            print("| " + " | ".join([*cells, r["outcome"]]) + " |", flush=True)


if __name__ == "__main__":
    main()

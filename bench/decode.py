"""Cost of the samplers on top of decoding: (decode + key frames + chunks + fragments) vs decode alone.

Generates (once, cached) a 1080p, 8-s, 30-fps H.264 clip, then times, alternating, R rounds of

- decode: every frame through `rqvqa.video.reader.decode_frames` (threaded decoding, no pixel conversion);
- sample: `sample_video(keyframes=True, keyframes_384=True, chunks=True, fragments=True)` on the same file
  (probe included, same decode settings), with the exact PIL chunk resize and with `chunk_resize="swscale"`,

and prints the medians, the ratios, and a per-stage profile of one exact sampling pass (what dominates).
Goal from issue 2: ratio <= 1.3.

    python bench/decode.py [--video PATH] [--rounds 3] [--workers 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rqvqa.video import sampling
from rqvqa.video.reader import decode_frames, probe
from rqvqa.video.sampling import sample_video
from rqvqa.video.synth import make_video


def bench_clip(path: Path) -> Path:
    if not path.exists():
        print(f"generating {path} (1920x1080, 240 frames, 30 fps, H.264 crf 23) ...", flush=True)
        make_video(path, width=1920, height=1080, fps=30, n_frames=240, crf=23)
    return path


def time_decode(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    n = sum(1 for _ in decode_frames(path))
    return time.perf_counter() - start, n


def time_sample(path: Path, workers: int, chunk_resize: str = "pil") -> float:
    start = time.perf_counter()
    products = dict(keyframes=True, keyframes_384=True, chunks=True, fragments=True)
    sample_video(path, **products, workers=workers, chunk_resize=chunk_resize)
    return time.perf_counter() - start


def profile_stages(path: Path, workers: int) -> dict[str, float]:
    """Wrap the per-frame stages of one sampling pass with timers (monkeypatching the module's functions)."""
    totals: dict[str, float] = {}
    names = {
        "rgb conversion (swscale)": "frame_to_rgb",
        "key-frame resize 384 (cv2)": "resize_short_side_384",
        "chunk resize 224 (PIL)": "resize_chunk_frame",
        "fragment patches": "_cut_patches",
        "probe": "probe",
    }
    originals = {attr: getattr(sampling, attr) for attr in names.values()}

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] = totals.get(label, 0.0) + time.perf_counter() - t

        return wrapper

    try:
        for label, attr in names.items():
            setattr(sampling, attr, timed(label, originals[attr]))
        totals["total"] = time_sample(path, workers)
    finally:
        for attr, fn in originals.items():
            setattr(sampling, attr, fn)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_clip = Path(tempfile.gettempdir()) / "rqvqa_bench_1080p_8s.mp4"
    parser.add_argument("--video", type=Path, default=default_clip, help="clip to time (generated if absent)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="sample_video conversion threads (0 = inline)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (only the fragment upsampling)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    path = bench_clip(args.video)
    info = probe(path)
    fps = float(info.frame_rate)
    print(f"clip: {path} {info.width}x{info.height}, {info.frame_count} frames at {fps:g} fps")
    time_decode(path)  # warm-up: file cache, codec initialisation
    decode_s, pil_s, fast_s = [], [], []
    for _ in range(args.rounds):
        t, n = time_decode(path)
        decode_s.append(t)
        pil_s.append(time_sample(path, args.workers))
        fast_s.append(time_sample(path, args.workers, "swscale"))
    d = statistics.median(decode_s)
    print(f"decode alone ({n} frames): median {d:.3f} s  (runs {np.round(decode_s, 3).tolist()})")
    for label, runs in (("exact PIL chunks", pil_s), ("swscale chunks", fast_s)):
        s = statistics.median(runs)
        print(f"decode + 3 samplers, {label} (workers={args.workers}): median {s:.3f} s", end="")
        print(f"  (runs {np.round(runs, 3).tolist()})  ratio {s / d:.2f}x (goal <= 1.3x)")
    # stage times are summed over threads (CPU-side cost), run inline so they add up to the total
    stages = profile_stages(path, 0)
    total = stages.pop("total")
    print(f"one profiled sampling pass: {total:.3f} s")
    for label, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {label:28s} {seconds:7.3f} s  ({100 * seconds / total:4.1f} %)")
    rest = total - sum(stages.values())
    print(f"  {'decode + bookkeeping':28s} {rest:7.3f} s  ({100 * rest / total:4.1f} %)")


if __name__ == "__main__":
    main()

"""Time of the LIQE source on the 8 key frames of a generated 1080p clip (random ViT-B/32 weights).

Generates (once, cached in the temp folder) an 8-s 1920x1080 30-fps H.264 clip, samples its native-resolution
key frames, and reports separately:

- decode: `sample_video(keyframes=True)` (the share of the video pipeline LIQE needs);
- prompts: the one-off 495-prompt text encoding (cached on disk per weights file in real use);
- frames: the 8 key frames x 15 patches through the image tower and the logits (median of R rounds).

    python bench/sources_liqe.py [--video PATH] [--rounds 3] [--threads 1] [--device cuda] [--dtype float16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rqvqa.families.liqe.network import build_liqe
from rqvqa.video.sampling import sample_video
from rqvqa.video.synth import make_video


def bench_clip(path: Path) -> Path:
    if not path.exists():
        print(f"generating {path} (1920x1080, 240 frames, 30 fps, H.264 crf 23) ...", flush=True)
        make_video(path, width=1920, height=1080, fps=30, n_frames=240, crf=23)
    return path


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=Path(tempfile.gettempdir()) / "rqvqa_bench_1080p.mp4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=60, help="patches per image-tower batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    path = bench_clip(args.video)
    start = time.perf_counter()
    sample = sample_video(path, keyframes=True)
    decode_s = time.perf_counter() - start
    frames = sample.keyframes or []
    print(f"video: {path.name}, {len(frames)} key frames of {frames[0].shape[1]}x{frames[0].shape[0]}")

    torch.manual_seed(0)
    model = build_liqe(device=device, dtype=dtype)
    start = time.perf_counter()
    model.text_features()
    synchronise(device)
    prompts_s = time.perf_counter() - start

    model.frame_logits(frames[:1], batch_size=args.batch_size)  # warm-up (allocator, kernels)
    times = []
    for _ in range(args.rounds):
        synchronise(device)
        start = time.perf_counter()
        logits = model.frame_logits(frames, batch_size=args.batch_size)
        synchronise(device)
        times.append(time.perf_counter() - start)
    frames_s = statistics.median(times)
    assert logits.shape == (len(frames), 495)

    print(f"device {device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}")
    print(f"decode + key-frame sampling      {decode_s:8.2f} s")
    print(f"495 prompt features (one-off)    {prompts_s:8.2f} s")
    per_frame = frames_s / len(frames)
    print(f"LIQE on {len(frames)} key frames (median)  {frames_s:8.2f} s  ({per_frame:.3f} s/frame)")
    print(f"decode share of (decode + frames)  {decode_s / (decode_s + frames_s):6.1%}")


if __name__ == "__main__":
    main()

"""Time of the SlowFast and FAST-VQA sources on a generated 8-s 1080p clip (random weights).

Generates (once, cached in the temp folder) an 8-s 1920x1080 30-fps H.264 clip and reports per source:

- sampling: `sample_video(chunks=True)` (decode + 224x224 resize of 8 chunks x 32 frames) or
  `sample_video(fragments=True)` (decode + 4 clips x 32 frames of 7x7 fragments); a plain decode of every
  frame is timed too, for reference;
- network: the source's `extract` on those products (median of R rounds, after one warm-up);
- the share of sampling in (sampling + network).

Every figure is given as wall time and as process CPU time (all threads): on a shared machine the CPU time is
the steadier measure of the work done; on an idle machine wall ~ CPU / threads.

    python bench/sources_video.py [--video PATH] [--rounds 1] [--threads 2] [--device cuda] [--dtype float16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rqvqa.families.fastvqa.network import FastVQA
from rqvqa.families.fastvqa.source import FastVQASource
from rqvqa.families.slowfast.network import SlowFastFastPathway
from rqvqa.families.slowfast.source import SlowFastSource
from rqvqa.video.reader import decode_frames
from rqvqa.video.sampling import sample_video
from rqvqa.video.synth import make_video


def bench_clip(path: Path) -> Path:
    if not path.exists():
        print(f"generating {path} (1920x1080, 240 frames, 30 fps, H.264 crf 23) ...", flush=True)
        make_video(path, width=1920, height=1080, fps=30, n_frames=240, crf=23)
    return path


def timed(fn: Callable[[], object], device: torch.device, rounds: int = 1) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of `fn` over `rounds` calls (GPU work synchronised first)."""
    walls, cpus = [], []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def report(
    name: str, sampling: tuple[float, float], network: tuple[float, float], units: int, unit: str
) -> None:
    for i, kind in enumerate(("wall", "cpu")):
        total = sampling[i] + network[i]
        print(
            f"{name:9s} {kind:4s}  sampling {sampling[i]:7.2f} s   network {network[i]:7.2f} s "
            f"({network[i] / units:.3f} s/{unit}, {units} {unit}s)   total {total:7.2f} s   "
            f"sampling share {sampling[i] / total:6.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--video", type=Path, default=Path(tempfile.gettempdir()) / "rqvqa_bench_sources_video_1080p.mp4"
    )
    parser.add_argument("--rounds", type=int, default=1, help="timed network rounds (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--only", choices=["slowfast", "fastvqa"], help="time one source only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    path = bench_clip(args.video)
    print(f"video {path.name}; device {device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}")

    decode_wall, decode_cpu = timed(lambda: sum(1 for _ in decode_frames(path)), torch.device("cpu"))
    print(f"plain decode of every frame: wall {decode_wall:.2f} s, cpu {decode_cpu:.2f} s")
    cpu = torch.device("cpu")

    torch.manual_seed(0)
    if args.only in (None, "slowfast"):
        samples = []
        sampling = timed(lambda: samples.append(sample_video(path, chunks=True)), cpu)
        sample = samples[0]
        source = SlowFastSource(model=SlowFastFastPathway(), device=device, dtype=dtype, chunks_per_batch=4)
        source.extract(sample)  # warm-up
        network = timed(lambda: source.extract(sample), device, args.rounds)
        report("slowfast", sampling, network, len(sample.chunks), "chunk")

    if args.only in (None, "fastvqa"):
        samples = []
        sampling = timed(lambda: samples.append(sample_video(path, fragments=True, seed=0)), cpu)
        sample = samples[0]
        source = FastVQASource(model=FastVQA(), device=device, dtype=dtype, clips_per_batch=1)
        # warm-up on one clip only: a full FAST-VQA-B pass is the expensive part being measured
        with torch.inference_mode():
            source.model.fragments_backbone(torch.zeros(1, 3, 32, 224, 224, device=device, dtype=dtype))
        network = timed(lambda: source.extract(sample), device, args.rounds)
        report("fastvqa", sampling, network, len(sample.fragments), "clip")


if __name__ == "__main__":
    main()

"""Collection throughput: videos per hour, sequential vs the local engine vs Ray, in one run.

1. Generates `--videos` clips (default 40 x 540p, 8 s, 30 fps, H.264, 8 distinct contents; cached in `--dir`)
   and scores them with `--model` (default `lite`; `liqe` is LIQE at its real size, CLIP ViT-B/32, with random
   weights, since the official ones cannot be downloaded here: the cost of a network model, not its scores)
   with the sequential engine, the local engine (`--workers`, default all cores) and the Ray engine (a private
   local runtime with the same CPUs; skipped without Ray). Prints videos/hour and the ratios
   local/sequential and Ray/local, and checks that the three engines gave the same scores.
2. Peak memory with `--queued` videos (default 1,000) behind the local engine: a subprocess scores that many
   inputs (links to one short clip) and reports its own peak RSS and its largest worker's.

    PYTHONPATH=src python bench/collection.py [--model lite|liqe] [--videos 40] [--workers 2] [--queued 1000]
        [--no-ray] [--batch-size 1]

Measured on a shared, loaded machine the ratios move with the neighbours' load: run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def make_clips(
    folder: Path, n: int, width: int, height: int, seconds: int, fps: int, distinct: int = 8
) -> list[str]:
    """`n` clips: `distinct` generated ones (different content and CRF) and copies of them (generating 540p
    frames costs more than scoring them; a copy is decoded and scored like any other file)."""
    import shutil

    from rqvqa.video.synth import make_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}_{width}x{height}_{seconds}s.mp4"
        if not path.exists():
            tmp = path.with_suffix(".part.mp4")
            if i < distinct:
                make_video(
                    tmp, width=width, height=height, fps=fps, n_frames=seconds * fps, seed=i, crf=18 + 3 * i
                )
            else:
                shutil.copy(paths[i % distinct], tmp)
            tmp.rename(path)
        paths.append(str(path))
    return paths


def predictor(model: str, folder: Path):
    """The model to time: `lite`, or LIQE at its real size with random weights (network cost, no download)
    saved as a checkpoint file, so that every engine loads it where its model stage runs, as real weights."""
    from rqvqa import create_predictor

    if model == "lite":
        return create_predictor("lite")
    import torch
    from safetensors.torch import save_file

    from rqvqa.families.liqe.network import build_liqe

    torch.manual_seed(0)
    weights = folder / "liqe_random.safetensors"
    if not weights.exists():
        state = {k: v.contiguous() for k, v in build_liqe().clip.state_dict().items()}
        save_file(state, str(weights))
    return create_predictor("liqe", weights=str(weights))


def timed_run(
    model, videos: list[str], engine: str, workers: int, batch_size: int
) -> tuple[float, dict[str, float | None]]:
    from rqvqa.pipeline import score_collection

    start = time.perf_counter()
    rows = list(score_collection(model, videos, engine=engine, workers=workers, batch_size=batch_size))
    seconds = time.perf_counter() - start
    return seconds, {r["path"]: r["score"] for r in rows}


def memory_run(folder: Path, queued: int, workers: int) -> dict[str, float]:
    """In this (fresh) process: score `queued` links to one clip with the local engine; peak RSS in MiB."""
    from rqvqa import create_predictor
    from rqvqa.pipeline import score_collection

    clip = make_clips(folder, 1, 320, 240, 1, 30)[0]
    links = folder / f"queued{queued}"
    links.mkdir(exist_ok=True)
    for i in range(queued):
        link = links / f"v{i:05d}.mp4"
        if not link.exists():
            link.symlink_to(clip)
    n = sum(
        1 for _ in score_collection(create_predictor("lite"), [str(links)], engine="local", workers=workers)
    )
    kib = 1024.0
    return {
        "videos": n,
        "driver_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "largest_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
        "workers": workers,
    }


def main() -> None:
    from rqvqa.pipeline.stages import default_workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("lite", "liqe"), default="lite")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rqvqa_bench_collection"))
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(memory_run(args.dir, args.queued, args.workers)))
        return

    width, height = (int(v) for v in args.size.lower().split("x"))
    t = time.perf_counter()
    videos = make_clips(args.dir, args.videos, width, height, args.seconds, 30)
    print(f"{len(videos)} clips {width}x{height} {args.seconds}s ready in {time.perf_counter() - t:.0f} s")
    print(f"cores available: {default_workers()}, workers: {args.workers}, load average: {os.getloadavg()}")

    engines = ["sequential", "local"] + ([] if args.no_ray else ["ray"])
    model = predictor(args.model, Path(args.dir))
    model.setup()  # loaded once, before the clocks start (LIQE: CLIP and its 495 prompt features)
    print(f"model: {args.model}, batch size {args.batch_size}")
    results = {}
    for engine in engines:
        if engine == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray: not installed (pip install 'rqvqa[ray]'), skipped")
                continue
        seconds, scores = timed_run(model, videos, engine, args.workers, args.batch_size)
        results[engine] = (seconds, scores)
        print(f"{engine:>10}: {seconds:7.1f} s  {len(videos) / seconds * 3600:8.0f} videos/hour")
    base = results["sequential"][1]
    for engine, (_, scores) in results.items():
        # a network run in a Ray actor sums in another thread order: its scores agree to float rounding
        same = all(abs((scores[p] or 0) - (base[p] or 0)) < 1e-6 for p in base)
        print(f"{engine:>10}: same scores as sequential: {same}")
    seq, local = results["sequential"][0], results["local"][0]
    print(f"ratio local / sequential (throughput): {seq / local:.2f}x")
    if "ray" in results:
        ray_s = results["ray"][0]
        print(f"ratio ray / local (throughput): {local / ray_s:.2f}x (Ray time includes its start-up)")

    if args.model != "lite":
        return
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-only",
            "--queued",
            str(args.queued),
            "--workers",
            str(args.workers),
            "--dir",
            str(args.dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    memory = json.loads(out.stdout.strip().splitlines()[-1])
    total = memory["driver_mib"] + memory["workers"] * memory["largest_worker_mib"]
    print(
        f"{memory['videos']} queued videos: peak RSS driver {memory['driver_mib']:.0f} MiB, largest worker "
        f"{memory['largest_worker_mib']:.0f} MiB, bound driver + {memory['workers']} workers {total:.0f} MiB"
    )


if __name__ == "__main__":
    main()

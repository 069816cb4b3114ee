"""Speed of the Python VIDEVAL features against the release's MATLAB figures, and of the default model.

Generates 8-s 30-fps H.264 clips (540p and 1080p, `rqvqa.video.synth`) and times, wall clock and process CPU:
full VIDEVAL at 540p, VIDEVAL_light720_6fps at 540p and 1080p (MATLAB, from the release's README: 61.9 s,
29.9 s, 72.6 s per video), and `lite` (VIDEVAL_light480_3fps, MATLAB light480_3fps: 12.2 s at 540p, 20.4 s
at 1080p) against real time (8 s). Run on 2 cores (`taskset -c 0,1`) for the reference figures; the load
average is printed because a shared machine inflates wall times.

    python bench/videval.py [--keep DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

CASES = [
    # name, variant, clip height, MATLAB seconds (None: no published figure)
    ("videval 540p", "videval", 540, 61.9),
    ("videval-light 540p", "videval-light", 540, 29.9),
    ("videval-light 1080p", "videval-light", 1080, 72.6),
    ("lite (light480_3fps) 540p", "videval-light480", 540, 12.2),
    ("lite (light480_3fps) 1080p", "videval-light480", 1080, 20.4),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder for the generated clips (default: temp)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    args = parser.parse_args()

    from rqvqa.families.videval.extract import videval_features
    from rqvqa.video.synth import make_video

    folder = args.keep or Path(tempfile.mkdtemp())
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs visible")
    for name, variant, height, matlab in CASES:
        if args.only and name not in args.only:
            continue
        clip = folder / f"videval_bench_{height}p_8s.mp4"
        if not clip.exists():
            make_video(clip, width=height * 16 // 9, height=height, fps=30, n_frames=240, crf=23)
        wall, cpu = time.perf_counter(), time.process_time()
        videval_features(clip, variant)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        vs = f", {matlab / wall:.2f} x faster than MATLAB ({matlab} s)" if matlab else ""
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {8.0 / wall:.2f} x real time{vs}", flush=True)


if __name__ == "__main__":
    main()

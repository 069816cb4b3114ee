"""CPU cost of the artifact diagnosis (`rqvqa.diagnosis`) against the default model (`lite`) alone.

The clip: the shipped real clip (examples/5115335471.mp4, KoNViD-1k, 960x540, 8 s) upscaled to 1920x1080
(bicubic, swscale) with a near-lossless encode (libx264 CRF 6, one thread), made once in --keep.

CPU seconds are process time (user + system of every thread of this process: threaded decoding included),
several runs, min and median:

- decode: decoding every frame and taking its luma plane (`frame_to_gray`), nothing else: what the pipeline's
  single decode already pays;
- diagnosis added: decode + `Diagnoser.add` for every frame + `result()`, minus decode: the diagnosis'
  own cost once it rides on the pipeline's decode (the goal: at most 15 % of lite's CPU; about 1.2 CPU-s
  once lite is sped up to its ~8 CPU-s target);
- diagnose_file: the whole `rqvqa diagnose` path for one file (its own decode included);
- lite: `create_predictor("lite").predict(clip)` (imports and first-use set-up done before timing).

    python bench/diagnosis.py [--keep DIR] [--runs 3] [--lite-runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "examples" / "5115335471.mp4"


def make_clip(out: Path) -> Path:
    """The 8-s 1080p clip: the real clip upscaled, near-lossless."""
    import av

    from rqvqa.video.reader import decode_frames, probe

    info = probe(SOURCE)
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(info.frame_rate).limit_denominator(100000))
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "6", "threads": "1", "preset": "medium", "x264-params": "mbtree=0"}
        for index, frame in decode_frames(SOURCE):
            big = frame.reformat(width=1920, height=1080, format="yuv420p", interpolation="BICUBIC")
            big.pts, big.time_base = index, 1 / stream.codec_context.framerate
            for packet in stream.encode(big):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(out)
    return out


def cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def decode_only(clip: Path) -> None:
    from rqvqa.video.reader import decode_frames, frame_to_gray

    for _, frame in decode_frames(clip):
        frame_to_gray(frame)


def decode_and_diagnose(clip: Path) -> dict:
    from rqvqa.diagnosis import Diagnoser, is_full_range
    from rqvqa.video.reader import decode_frames, frame_to_gray, probe

    info = probe(clip)
    diagnoser = None
    for index, frame in decode_frames(clip):
        if diagnoser is None:
            diagnoser = Diagnoser(
                info.width,
                info.height,
                float(info.frame_rate),
                info.frame_count,
                full_range=is_full_range(frame),
            )
        diagnoser.add(index, frame.time, frame_to_gray(frame))
    return diagnoser.result()


def summary(values: list[float]) -> str:
    return f"min {min(values):.2f}, median {statistics.median(values):.2f} CPU-s ({len(values)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder for the generated clip (default: temp)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of the decode and diagnosis timings")
    parser.add_argument("--lite-runs", type=int, default=2, help="runs of lite")
    args = parser.parse_args()

    from rqvqa.diagnosis import diagnose_file

    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "diagnosis_bench_1080p_8s.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_clip(clip)
        print(f"generated {clip} in {time.perf_counter() - t:.1f} s")

    decode_and_diagnose(clip)  # warm-up: imports (scikit-image, PyWavelets), caches
    decode = [cpu(lambda: decode_only(clip)) for _ in range(args.runs)]
    both = [cpu(lambda: decode_and_diagnose(clip)) for _ in range(args.runs)]
    whole = [cpu(lambda: diagnose_file(clip)) for _ in range(args.runs)]
    added = [b - d for b, d in zip(sorted(both), sorted(decode), strict=True)]
    print(f"decode + luma:        {summary(decode)}")
    print(f"decode + diagnosis:   {summary(both)}")
    print(f"diagnosis added:      {summary(added)}")
    print(f"diagnose_file:        {summary(whole)}")

    from rqvqa.zoo import create_predictor

    predictor = create_predictor("lite")
    predictor.predict(clip)  # warm-up
    lite = [cpu(lambda: predictor.predict(clip)) for _ in range(args.lite_runs)]
    print(f"lite alone:           {summary(lite)}")
    ratio = statistics.median(added) / statistics.median(lite)
    print(f"diagnosis added / lite: {100 * ratio:.1f} % (goal <= 15 %)")


if __name__ == "__main__":
    main()

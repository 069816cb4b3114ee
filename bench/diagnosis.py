"""CPU cost of the artifact diagnosis on the rows: `lite` with it (the default) against `lite --no-diagnosis`.

The clip: the shipped real clip (examples/5115335471.mp4, KoNViD-1k, 960x540, 8 s) upscaled to 1920x1080
(bicubic, swscale) with a near-lossless encode (libx264 CRF 6, one thread), made once in --keep.

CPU seconds are process time (user + system of every thread of this process: threaded decoding included),
runs alternated, min and median:

- lite, no diagnosis: `create_predictor("lite").predict(clip, diagnosis=False)` (imports and first-use
  set-up done before timing);
- lite with the diagnosis: `predict(clip)`: the diagnosis rides on lite's own decode (a passive product);
- diagnose_file: the whole `rqvqa diagnose` path for one file (its own decode of every frame).

    python bench/diagnosis.py [--keep DIR] [--runs 3]
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


def summary(values: list[float]) -> str:
    return f"min {min(values):.2f}, median {statistics.median(values):.2f} CPU-s ({len(values)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder for the generated clip (default: temp)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each timing")
    args = parser.parse_args()

    from rqvqa.api import create_predictor
    from rqvqa.diagnosis import diagnose_file

    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "diagnosis_bench_1080p_8s.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_clip(clip)
        print(f"generated {clip} in {time.perf_counter() - t:.1f} s")

    predictor = create_predictor("lite")
    predictor.predict(clip)  # warm-up: imports (scikit-image, PyWavelets), caches, the model
    bare: list[float] = []
    diagnosed: list[float] = []
    for _ in range(args.runs):
        bare.append(cpu(lambda: predictor.predict(clip, diagnosis=False)))
        diagnosed.append(cpu(lambda: predictor.predict(clip)))
    whole = [cpu(lambda: diagnose_file(clip)) for _ in range(args.runs)]
    print(f"lite, no diagnosis:     {summary(bare)}")
    print(f"lite with diagnosis:    {summary(diagnosed)}")
    print(f"diagnose_file:          {summary(whole)}")
    ratio = statistics.median(diagnosed) / statistics.median(bare) - 1
    print(f"diagnosis added to lite: {100 * ratio:+.1f} % (goal <= 15 %)")


if __name__ == "__main__":
    main()

"""Speed and fast-mode deviation of `lite-v1` (the first lite model; `bench/videval.py` times lite v2).

1. Generates an 8-s 1080p H.264 clip (30 fps) and times: decoding every frame (the floor any full-video model
   pays), `rqvqa predict --model lite` (exact protocol: 8 frames) and the fast mode (--max-frames 4, 2).
   Run with 2 CPU cores (e.g. `taskset -c 0,1`) to reproduce the reference figure.
2. If ../shared/data/videos/5115335471.mp4 exists: the fast modes' deviation from the exact protocol
   (36 BRISQUE video features: max relative deviation; the lite score: absolute difference).

    python bench/lite.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "5115335471.mp4"


def _timed(fn, repeats: int = 2) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder for the generated clip (default: temp)"
    )
    args = parser.parse_args()

    from rqvqa.families.lite.predictor import LiteV1Predictor as LitePredictor
    from rqvqa.video.reader import decode_frames
    from rqvqa.video.synth import make_video

    folder = args.keep or Path(tempfile.mkdtemp())
    clip = folder / "lite_bench_1080p_8s.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_video(clip, width=1920, height=1080, fps=30, n_frames=240, crf=23)
        print(f"generated {clip} in {time.perf_counter() - t:.1f} s")

    decode_s, _ = _timed(lambda: sum(1 for _ in decode_frames(clip)))
    print(f"decode all 240 frames: {decode_s:.2f} s")
    for max_frames in (None, 4, 2):
        predictor = LitePredictor(max_frames=max_frames)
        secs, pred = _timed(lambda p=predictor: p.predict(clip))
        label = "exact (8 frames)" if max_frames is None else f"fast --max-frames {max_frames}"
        print(
            f"lite {label}: {secs:.2f} s = {secs / decode_s:.2f} x decode time, "
            f"{8.0 / secs:.2f} x real time; score {pred.score:.3f}"
        )

    if SHARED_VIDEO.is_file():
        from rqvqa.families.classic.frames import video_features

        exact = video_features(SHARED_VIDEO)
        exact_score = LitePredictor().predict(SHARED_VIDEO).score
        for max_frames in (4, 2, 1):
            fast = video_features(SHARED_VIDEO, max_frames=max_frames)
            diff = np.abs(fast.brisque_video - exact.brisque_video)
            within = int(np.sum((diff <= 0.05 * np.abs(exact.brisque_video)) | (diff <= 0.005)))
            score = LitePredictor(max_frames=max_frames).predict(SHARED_VIDEO).score
            print(
                f"fast --max-frames {max_frames} on {SHARED_VIDEO.name}: {within}/36 BRISQUE video features "
                f"within 5 % or 0.005 of the exact protocol (max abs. deviation {diff.max():.4f}); "
                f"lite score {score:.3f} vs exact {exact_score:.3f}"
            )


if __name__ == "__main__":
    main()

"""Load test of the scoring service: N uploads of short clips at a given concurrency against a real uvicorn on
127.0.0.1 (`lite`, the default model). Prints p50/p95 latency, throughput, and the ratio of the service's
throughput to scoring the same clips in-process one after the other (what the HTTP layer and the pool cost or
gain), and checks that no request failed and every score equals the in-process one.

    python bench/serve_load.py [--requests 200] [--concurrency 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import httpx
    from serving import running

    from rqvqa.api import create_predictor
    from rqvqa.pipeline import score_video
    from rqvqa.serve import ServeConfig, create_app
    from rqvqa.video.synth import make_video

    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            make_video(
                Path(tmp) / f"c{k}.mp4", width=320, height=240, fps=15, n_frames=30, seed=k, noise=2 * k
            )
            for k in range(4)
        ]
        data = [c.read_bytes() for c in clips]
        predictor = create_predictor("lite")
        expected = [score_video(predictor, c)["score"] for c in clips]
        t = time.perf_counter()
        for k in range(args.requests):
            score_video(predictor, clips[k % len(clips)])
        in_process = args.requests / (time.perf_counter() - t)

        config = ServeConfig(models=["lite"], workers=args.workers, queue=max(8, args.concurrency))
        with running(create_app(config)) as url, httpx.Client(base_url=url, timeout=120) as client:

            def one(k: int) -> tuple[float, int, float | None]:
                start = time.perf_counter()
                response = client.post(
                    "/v1/score", files={"file": (f"c{k % 4}.mp4", data[k % 4], "video/mp4")}
                )
                return time.perf_counter() - start, response.status_code, response.json().get("score")

            t = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - t

    latencies = sorted(r[0] for r in results)
    failed = sum(r[1] != 200 for r in results)
    wrong = sum(r[1] == 200 and r[2] != expected[k % 4] for k, r in enumerate(results))
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, {args.workers} workers, 2-s 320x240 clips"
    )
    print(f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    print(
        f"throughput {args.requests / wall:.1f} requests/s; in-process sequential {in_process:.1f} videos/s"
    )
    print(f"service / in-process throughput ratio: {args.requests / wall / in_process:.2f}")
    print(f"failed requests: {failed}; scores different from in-process: {wrong}")
    return 1 if failed or wrong else 0


if __name__ == "__main__":
    sys.exit(main())

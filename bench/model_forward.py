"""Forward cost of the RQ-VQA model (one video = 8 key frames at 384) and of its BoT stack alone.

Usage: python bench/model_forward.py [--device cpu|cuda] [--threads N] [--repeats R] [--amp]
Prints seconds per video for the `rqvqa` and `base` presets and the BoT share. Random weights.
"""

from __future__ import annotations

import argparse
import time

import torch

from rqvqa.families.rqvqa.model import RQVQA, preset


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    features = {
        "slowfast": torch.randn(1, args.frames, 256, device=device),
        "qalign": torch.randn(1, args.frames, 4096, device=device),
        "liqe": torch.randn(1, args.frames, 495, device=device),
        "fastvqa": torch.randn(1, 768, device=device),
    }
    frames = torch.randn(1, args.frames, 3, 384, 384, device=device)
    results = {}
    for name in ("rqvqa", "base"):
        model = RQVQA(preset(name)).to(device).eval()
        feats = {k: v for k, v in features.items() if k in model.config.source_names}

        def run(model=model, feats=feats):
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                model(frames, feats)

        results[name] = _time(run, args.repeats, device)
        if name == "rqvqa":
            fmap = torch.randn(args.frames, 1024, 12, 12, device=device)

            def run_bot(bot=model.base.bot, fmap=fmap):
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                    bot(fmap)

            results["bot stack only"] = _time(run_bot, args.repeats, device)
        del model
    print(f"device {device}, threads {args.threads}, {args.frames} frames at 384, amp={args.amp}")
    for name, seconds in results.items():
        print(f"  {name:16s} {seconds:8.3f} s per video")
    print(f"  BoT share of the rqvqa forward: {results['bot stack only'] / results['rqvqa']:.1%}")


if __name__ == "__main__":
    main()

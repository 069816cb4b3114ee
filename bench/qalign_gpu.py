"""Q-Align (one-align) feature cost per 8-s video: 8 key frames -> 16 half-frames in one batch.

Prints seconds per video for the CPU preprocessing (split, pad, PIL bicubic 448, normalise) and for the model,
and the peak GPU memory. Without ``--weights`` the full-size network gets random weights (same cost as the
real one; no download needed). ``--tiny`` runs a tiny configuration on the CPU so the script itself is tested.

Paper (Table 8): 4.20 s per 8-s 1080p video on an RTX 3090 for this branch; goal here: <= 0.3 s on one H100.

    python bench/qalign_gpu.py                      # full size, random weights, CUDA, bf16
    python bench/qalign_gpu.py --weights DIR        # real one-align checkpoint folder (+ tokenizer.model)
    python bench/qalign_gpu.py --tiny               # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rqvqa.families.qalign.config import TINY_CONFIG, Owl2Config
from rqvqa.families.qalign.network import MplugOwl2
from rqvqa.families.qalign.source import QAlign, SentencePieceTokenizer, split_halves


class SyntheticTokenizer:
    """Stand-in when no tokenizer.model is given: the LLaMA tokenizer's piece counts for the two prompt chunks
    (14 and 12), so the sequence has the real length (BOS + 14 + 65 visual + 12 = 92)."""

    bos_id = 1

    def encode(self, text: str) -> list[int]:
        n = 14 if text.startswith("USER") else 12 if text.startswith(" ASSISTANT") else 1
        return [(7 * i + len(text)) % 500 + 3 for i in range(n)]


def random_model(cfg: Owl2Config, device: torch.device, dtype: torch.dtype) -> MplugOwl2:
    """Full-size network with random weights, allocated directly on `device` (no host copy)."""
    with torch.device("meta"):
        model = MplugOwl2(cfg)
    # The sin-cos buffers are real (built from numpy) even on meta: keep them across to_empty.
    tables = {name: buf.clone() for name, buf in model.named_buffers()}
    model = model.to_empty(device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or "ffn_ln" in name):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
        for name, buf in model.named_buffers():
            buf.copy_(tables[name])
    return model.to(dtype).eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random config on the CPU (smoke test)")
    parser.add_argument(
        "--weights", help="one-align checkpoint folder (config.json, shards, tokenizer.model)"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument(
        "--load-8bit", action="store_true", help="bitsandbytes LLM.int8 (official RQ-VQA setting)"
    )
    parser.add_argument("--frames", type=int, default=8, help="key frames per video (8 for an 8-s video)")
    parser.add_argument("--batch", type=int, default=16, help="half-frames per forward")
    parser.add_argument("--size", default="1920x1080", help="frame WxH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(1 if args.tiny else torch.get_num_threads())
    device = torch.device(args.device or ("cpu" if args.tiny or not torch.cuda.is_available() else "cuda"))
    dtype = torch.float32 if args.tiny else getattr(torch, args.dtype)
    if args.weights:
        engine = QAlign.from_pretrained(args.weights, device, dtype, args.load_8bit, args.batch)
    else:
        model = random_model(TINY_CONFIG if args.tiny else Owl2Config(), device, dtype)
        if args.load_8bit:
            from rqvqa.families.qalign.checkpoint import quantize_8bit

            quantize_8bit(model)
        tokenizer = SyntheticTokenizer()
        engine = QAlign(model, tokenizer, args.batch)  # type: ignore[arg-type]
    if isinstance(engine.tokenizer, SentencePieceTokenizer):
        print("tokenizer: checkpoint tokenizer.model")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(args.frames)]

    halves = [h for f in frames for h in split_halves(f)]
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        engine.pixels(halves)  # the same threaded path frame_features uses
    sync()
    preprocess_s = (time.perf_counter() - t0) / args.repeats

    engine.frame_features(frames)  # warm-up (kernels, allocator)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        features = engine.frame_features(frames)
    sync()
    total_s = (time.perf_counter() - t0) / args.repeats
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "config": "tiny" if args.tiny else "one-align (8.2 B)",
        "weights": args.weights or "random",
        "precision": "int8" if args.load_8bit else str(dtype).removeprefix("torch."),
        "frames_per_video": args.frames,
        "half_frames_per_batch": args.batch,
        "frame_size": f"{width}x{height}",
        "feature_shape": list(features.shape),
        "preprocess_s_per_video": round(preprocess_s, 4),
        "model_s_per_video": round(total_s - preprocess_s, 4),
        "total_s_per_video": round(total_s, 4),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    return report


if __name__ == "__main__":
    main()

"""The whole `rqvqa-kvq` pipeline per video, stage by stage, beside the paper's Table 8.

Builds random weights in the official layouts (the KVQ checkpoint from the 429-key manifest, SlowFast R50,
LIQE's CLIP ViT-B/32 and FAST-VQA-B at full size from their manifests, and Q-Align at the official 4096-d
width but with `--qalign-layers` decoder layers and a small vision tower), then scores a video with the
`rqvqa-kvq` predictor and prints the seconds of each stage (decode + sampling, each source, base network +
head) per video, for each requested precision, with the peak memory.

    python bench/full_model.py --device cpu                         # CPU, fp32, 2 threads, the real clip
    python bench/full_model.py --device cpu --synth 1920x1080       # a generated 8-s 1080p video
    python bench/full_model.py --device cuda --dtype bfloat16 float16 float32 --synth 1920x1080
    python bench/full_model.py --video clip.mp4 --json

Paper, Table 8 (RTX 3090, one 8-s 1080p video): the whole model 5.30 s, of which Q-Align 4.20 s. A shallow
Q-Align leaves out 31 of the 32 LLaMA layers and the 24-layer ViT-L vision tower, i.e. nearly all of its cost:
its row here is a lower bound, not the real figure (bench/qalign_gpu.py runs the full 8.2 B network).

Not measured here yet: a sweep over batch sizes. The sources run one video at a time (all of its frames in one
batch); only the base network and the head batch across videos (`rqvqa predict --batch-size`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = (
    Path(os.environ.get("RQVQA_FIXTURES", REPO.parent / "shared" / "reference" / "fixtures")) / "manifests"
)
PAPER_TABLE8 = {"whole model (RTX 3090)": 5.30, "qalign (RTX 3090)": 4.20}
#: the official file name of the first released KVQ model (any *.pth name loads)
KVQ_FILE = (
    "Swin_b_384_in22k_SlowFast_Fast_LLM_LIQE_FASTVQA_BoT_NTIREVideo_plcc_NR_v0_epoch_9_SRCC_0.885692.pth"
)


# ------------------------------------------------------------------------------------ official-layout weights


def _init(key: str, shape: list[int], dtype: str, gen: torch.Generator) -> torch.Tensor:
    """A plausible random tensor for an official key: norms near 1, BatchNorm statistics valid, weights with
    1/sqrt(fan-in) scale (activations stay O(1) through deep stacks), integer buffers zero."""
    if dtype == "int64":
        return torch.zeros(shape, dtype=torch.int64)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return torch.rand(shape, generator=gen) + 0.5
    if leaf == "logit_scale":
        return torch.full(shape, float(np.log(100.0)))
    if len(shape) <= 1 and leaf == "weight":  # LayerNorm / BatchNorm scale
        return 1.0 + 0.05 * torch.randn(shape, generator=gen)
    if len(shape) <= 1:  # biases, running means, scalars
        return 0.02 * torch.randn(shape, generator=gen)
    fan_in = int(np.prod(shape[1:]))
    return torch.randn(shape, generator=gen) / fan_in**0.5


def manifest_state(manifest: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """Every key of an official manifest with its shape and dtype, random values (see `_init`)."""
    gen = torch.Generator().manual_seed(seed)
    return {key: _init(key, shape, manifest["dtypes"][key], gen) for key, shape in manifest["shapes"].items()}


def _manifest(manifests: Path, name: str) -> dict[str, Any]:
    return json.loads((manifests / f"{name}.json").read_text())


def write_kvq(folder: Path, manifests: Path, seed: int = 0) -> Path:
    """One released KVQ model: ``torch.save`` of the DataParallel state dict (429 ``module.*`` keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = manifest_state(_manifest(manifests, "rqvqa_full_state_dict"), seed)
    torch.save(state, folder / KVQ_FILE)
    return folder / KVQ_FILE


def write_sources(weights_dir: Path, manifests: Path, qalign_layers: int = 1, seed: int = 0) -> Path:
    """SlowFast, LIQE, FAST-VQA (full size, official containers) and a shallow one-align folder, laid out
    as the download cache (``slowfast/``, ``liqe/``, ``fastvqa/``, ``one-align/``)."""
    from rqvqa.families.fastvqa.network import relative_position_index

    for sub in ("slowfast", "liqe", "fastvqa", "one-align"):
        (weights_dir / sub).mkdir(parents=True, exist_ok=True)
    state = manifest_state(_manifest(manifests, "slowfast_r50_state_dict"), seed + 1)
    torch.save({"model_state": state, "epoch": 196}, weights_dir / "slowfast" / "SLOWFAST_8x8_R50.pyth")
    state = manifest_state(_manifest(manifests, "clip_vit_b32_liqe_state_dict"), seed + 2)
    torch.save(state, weights_dir / "liqe" / "LIQE.pt")
    state = manifest_state(_manifest(manifests, "fastvqa_b_state_dict"), seed + 3)
    for key in state:
        if key.endswith("relative_position_index"):  # deterministic buffers: the loader checks them
            state[key] = relative_position_index((8, 7, 7))
    torch.save({"state_dict": state}, weights_dir / "fastvqa" / "FAST_VQA_B_1_4.pth")
    write_shallow_qalign(weights_dir / "one-align", qalign_layers, seed + 4)
    return weights_dir


def shallow_qalign_config(layers: int = 1):
    """one-align's LLM widths (4096 hidden, 11008 MLP, 32 heads) with `layers` decoder layers, a small vocab
    (the test tokenizer's) and a 2-layer 64-d vision tower at the official 448-px / 14-px geometry."""
    from dataclasses import replace

    from rqvqa.families.qalign.config import AbstractorConfig, LlmConfig, Owl2Config, VisionConfig

    return Owl2Config(
        llm=replace(LlmConfig(), vocab_size=512, num_hidden_layers=layers),
        vision=VisionConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
        ),
        abstractor=AbstractorConfig(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=128,
            encoder_hidden_size=64,
        ),
    )


def _train_tokenizer(folder: Path) -> Path:
    """A small LLaMA-like sentencepiece model (BOS 1, byte fallback) covering the prompts."""
    import sentencepiece

    from rqvqa.families.qalign.source import IMAGE_PROMPT, LEVELS, VIDEO_PROMPT

    corpus = folder / "corpus.txt"
    lines = [*IMAGE_PROMPT, *VIDEO_PROMPT, " ".join(LEVELS)]
    corpus.write_text("\n".join(line.strip() for line in lines * 20))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=300,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    corpus.unlink()
    (folder / "tokenizer.vocab").unlink(missing_ok=True)
    return folder / "tokenizer.model"


def write_shallow_qalign(folder: Path, layers: int = 1, seed: int = 0) -> Path:
    """config.json, two bfloat16 ``pytorch_model-0000k-of-00002.bin`` shards (hub names), tokenizer.model."""
    from rqvqa.families.qalign.network import MplugOwl2

    cfg = shallow_qalign_config(layers)
    torch.manual_seed(seed)
    model = MplugOwl2(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or "ffn_ln" in name):
                p.uniform_(0.5, 1.5)
            elif p.ndim == 1:
                p.normal_(0.0, 0.02)
            else:
                p.normal_(0.0, 1.0 / p.shape[-1] ** 0.5)
    state = model.state_dict()
    del model
    keys = list(state)
    for k, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :]), start=1):
        torch.save(
            {key: state[key].to(torch.bfloat16) for key in part},
            folder / f"pytorch_model-0000{k}-of-00002.bin",
        )
    hf = {
        **cfg.llm.__dict__,
        "rope_scaling": None,
        "model_type": "mplug_owl2",
        "visual_config": {"visual_model": cfg.vision.__dict__, "visual_abstractor": cfg.abstractor.__dict__},
    }
    (folder / "config.json").write_text(json.dumps(hf, indent=1))
    _train_tokenizer(folder)
    return folder


# ------------------------------------------------------------------------------------------------- timing


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_stages(
    video: Path, kvq_dir: Path, weights_dir: Path, device: str, dtype: str | None, mode: str, repeats: int
) -> dict[str, Any]:
    """Score `video` `repeats` + 1 times (the first warms up and loads the sources) and average the stage
    timings the predictor records over the warm runs; `repeats` 0 reports the cold first run (smoke test)."""
    from rqvqa.api import create_predictor

    predictor = create_predictor(
        "rqvqa-kvq", weights=str(kvq_dir), device=device, weights_dir=str(weights_dir), mode=mode, dtype=dtype
    )
    dev = torch.device(device)
    prediction = predictor.predict(video)
    runs = [prediction] if repeats == 0 else []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(repeats):
        runs.append(predictor.predict(video))
    totals: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for prediction in runs:
        for stage, seconds in prediction.extra["timings"].items():
            totals[stage] = totals.get(stage, 0.0) + seconds / len(runs)
        for stage, seconds in prediction.extra["cpu_seconds"].items():
            cpu[stage] = cpu.get(stage, 0.0) + seconds / len(runs)
    totals["total"], cpu["total"] = sum(totals.values()), sum(cpu.values())
    return {
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": dtype or "default",
        "mode": mode,
        "runs": "cold (first call, loading included)" if repeats == 0 else f"{repeats} warm",
        "seconds": {k: round(v, 3) for k, v in totals.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "peak_memory_mb": round(_peak_memory_mb(dev)),
        "score": prediction.score,
        "per_second": len(prediction.per_second),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--video", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "5115335471.mp4"
    )
    parser.add_argument(
        "--synth",
        metavar="WxH",
        help="score a generated 8-s 30-fps video of this size instead (e.g. 1920x1080, Table 8's setting)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", default=[None], help="source precisions to compare")
    parser.add_argument("--mode", default="official", choices=["official", "full"])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (CPU runs)")
    parser.add_argument("--repeats", type=int, default=1, help="warm runs to average (0: the cold run)")
    parser.add_argument("--qalign-layers", type=int, default=1)
    parser.add_argument(
        "--weights-dir", type=Path, help="source weights (default: random, written to --work)"
    )
    parser.add_argument("--kvq", type=Path, help="KVQ checkpoint folder (default: random, written to --work)")
    parser.add_argument("--work", type=Path, default=Path("bench_full_model_weights"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.weights_dir is None:
        args.weights_dir = write_sources(args.work / "sources", MANIFESTS, args.qalign_layers)
    if args.kvq is None:
        write_kvq(args.work / "kvq", MANIFESTS)
        args.kvq = args.work / "kvq"
    if args.synth:
        from rqvqa.video.synth import make_video

        width, height = (int(v) for v in args.synth.lower().split("x"))
        args.video = args.work / f"synth_{width}x{height}_8s.mp4"
        if not args.video.is_file():
            args.work.mkdir(parents=True, exist_ok=True)
            make_video(args.video, width=width, height=height, fps=30, n_frames=240)
    reports = [
        run_stages(args.video, args.kvq, args.weights_dir, args.device, dtype, args.mode, args.repeats)
        for dtype in args.dtype
    ]
    if args.json:
        print(json.dumps(reports, indent=1, allow_nan=False))
    else:
        for r in reports:
            print(f"{r['device']}  dtype {r['dtype']}  mode {r['mode']}  peak {r['peak_memory_mb']} MB")
            print(f"  {'stage':<24} {'wall s/video':>12} {'CPU s/video':>12}")
            for stage, seconds in r["seconds"].items():
                print(f"  {stage:<24} {seconds:12.3f} {r['cpu_seconds'][stage]:12.3f}")
        for name, seconds in PAPER_TABLE8.items():
            print(f"  paper: {name:<17} {seconds:8.2f} s/video")
    return reports


if __name__ == "__main__":
    main(sys.argv[1:])

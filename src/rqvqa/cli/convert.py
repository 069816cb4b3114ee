"""`rqvqa convert CHECKPOINT -o OUT.safetensors --kind rqvqa|lsvq-base`: official checkpoint -> our layout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rqvqa.errors import ConfigError

#: checkpoint kind -> the preset whose layout it fills completely
KIND_PRESETS = {"rqvqa": "rqvqa", "lsvq-base": "base"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an official RQ-VQA or LSVQ base checkpoint to safetensors in rqvqa's layout",
        description="Read an official checkpoint safely (weights only), remap its keys (strip "
        "DataParallel's 'module.', timm 0.6.13 -> 1.x Swin names, drop recomputed buffers), load it strictly "
        "into the matching preset (rqvqa: a released KVQ model, 429 keys; lsvq-base: the LSVQ-pretrained "
        "Swin-B + SlowFast base, 366 keys) and write safetensors with the model configuration as metadata.",
    )
    p.add_argument("checkpoint", type=Path, help="official .pth file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors file")
    p.add_argument("--kind", choices=sorted(KIND_PRESETS), required=True, help="which official checkpoint")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def convert(checkpoint: Path, output: Path, kind: str) -> dict:
    """Convert one checkpoint; returns a summary (keys, parameters, output path)."""
    from rqvqa.checkpoints import load_strict
    from rqvqa.families.rqvqa.model import RQVQA, preset
    from rqvqa.families.rqvqa.remap import read_official, save_model

    if kind not in KIND_PRESETS:
        raise ConfigError(f"unknown checkpoint kind {kind!r}; expected one of {', '.join(KIND_PRESETS)}")
    if output.suffix != ".safetensors":
        raise ConfigError("the output file must end in .safetensors", output)
    state = read_official(checkpoint)  # read (and fail on a bad file) before building the 90 M-parameter net
    model = RQVQA(preset(KIND_PRESETS[kind]))
    load_strict(model, state, checkpoint)
    save_model(model, output, metadata={"converted_from": checkpoint.name, "kind": kind})
    own = model.state_dict()
    return {
        "checkpoint": str(checkpoint),
        "kind": kind,
        "preset": KIND_PRESETS[kind],
        "output": str(output),
        "tensors": len(own),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run(args: argparse.Namespace) -> int:
    summary = convert(args.checkpoint, args.output, args.kind)
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="converted checkpoint", show_header=False)
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    return 0

"""Options shared by several commands (precision for those that run feature sources, the pixel budget for
those that decode), kept free of heavy imports so that registering the parsers stays fast."""

from __future__ import annotations

import argparse

from rqvqa.video.reader import parse_pixels

#: compute precisions a source can be asked for (`--dtype`)
DTYPES = ("float32", "float16", "bfloat16")


def add_precision_options(p: argparse.ArgumentParser) -> None:
    """`--dtype` and `--qalign-8bit` (shared by `extract` and `predict`)."""
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default=None,
        help="compute precision of the network sources (default float32; rqvqa-kvq on CUDA: what the "
        "released heads saw, LIQE float16 and Q-Align int8)",
    )
    p.add_argument(
        "--qalign-8bit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run Q-Align in LLM.int8 (bitsandbytes; `pip install rqvqa[int8]`), as the released KVQ heads "
        "were trained (default: on for rqvqa-kvq on CUDA when bitsandbytes is installed, else off)",
    )


def add_max_pixels_option(p: argparse.ArgumentParser) -> None:
    """`--max-pixels` (every command that decodes): the per-frame pixel budget checked before any decode."""
    p.add_argument(
        "--max-pixels",
        type=parse_pixels,
        default=None,
        metavar="N|WxH",
        help="refuse videos whose frames have more pixels (default 7680x4320, 8K UHD)",
    )


def wrapping(table, whole: tuple[str, ...] = ("model",)):
    """A rich table whose cells wrap (fold) instead of being cut with an ellipsis: paths and URLs stay whole
    at 80 columns, over several lines; the columns named in `whole` (model names) are never broken."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = column.header in whole
    return table

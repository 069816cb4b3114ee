"""The fast pathway of pytorchvideo's SlowFast R50 (Kinetics-400, 8x8), alone.

RQ-VQA uses only the 256-d global mean of the fast pathway's res5 output. In SlowFast the lateral
connections go fast -> slow only (the fusion returns the fast tensor unchanged), so the fast pathway can run
without the slow one and gives the same numbers (`reference/slowfast.md` section 4; checked in the tests
against pytorchvideo with random slow inputs). This network is that pathway: stem + res2..res5, a 3-D ResNet
with 8/32/64/128/256 channels, temporal kernels of 3 in every bottleneck's first convolution and no temporal
downsampling (32 frames in, 32 out).

Module names are the checkpoint's names with `blocks.{i}.multipathway_blocks.1.` shortened to `blocks.{i}.`,
so `SLOWFAST_8x8_R50.pyth["model_state"]` loads after selecting that prefix; `fast_pathway_state_dict` does
the selection and accounts for every other key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint
from rqvqa.errors import WeightsError

log = logging.getLogger(__name__)

_FAST = re.compile(r"^blocks\.([0-4])\.multipathway_blocks\.1\.(.+)$")
#: the rest of a pytorchvideo slowfast_r50 state dict: slow pathway, fast->slow fusions, classifier
_NOT_FAST = re.compile(
    r"^blocks\.[0-4]\.multipathway_blocks\.0\.|^blocks\.[0-3]\.multipathway_fusion\.|^blocks\.6\.proj\."
)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


class Stem(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv3d(3, width, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False)
        self.norm = _bn(width)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.norm(self.conv(x))))


class Bottleneck(nn.Module):
    """1x1 conv with temporal kernel 3, then 3x3 spatial conv (carries the stride), then 1x1 expansion."""

    def __init__(self, dim_in: int, inner: int, dim_out: int, stride: int):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, inner, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.norm_a = _bn(inner)
        self.conv_b = nn.Conv3d(
            inner, inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
        )
        self.norm_b = _bn(inner)
        self.conv_c = nn.Conv3d(inner, dim_out, 1, bias=False)
        self.norm_c = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm_a(self.conv_a(x)))
        x = torch.relu(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    def __init__(self, dim_in: int, inner: int, dim_out: int, stride: int):
        super().__init__()
        self.projects = dim_in != dim_out or stride != 1
        if self.projects:
            self.branch1_conv = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.branch1_norm = _bn(dim_out)
        self.branch2 = Bottleneck(dim_in, inner, dim_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.branch1_norm(self.branch1_conv(x)) if self.projects else x
        return torch.relu(shortcut + self.branch2(x))


class ResStage(nn.Module):
    def __init__(self, dim_in: int, inner: int, dim_out: int, depth: int, stride: int):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResBlock(dim_in if j == 0 else dim_out, inner, dim_out, stride if j == 0 else 1)
            for j in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class SlowFastFastPathway(nn.Module):
    """(N, 3, 32, 224, 224) normalised clips -> (N, 256, 32, 7, 7) res5 map; `features` gives (N, 256)."""

    def __init__(self, stem_width: int = 8, depths: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        stages: list[nn.Module] = [Stem(stem_width)]
        dim_in = stem_width
        for i, depth in enumerate(depths):
            inner = stem_width * 2**i
            stages.append(ResStage(dim_in, inner, 4 * inner, depth, 1 if i == 0 else 2))
            dim_in = 4 * inner
        self.blocks = nn.ModuleList(stages)
        self.out_dim = dim_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The RQ-VQA SlowFast feature: global mean of the res5 map over (T, H, W)."""
        return self(x).mean(dim=(2, 3, 4))


@dataclass
class FastPathwayLoad:
    """What `fast_pathway_state_dict` did with a full SlowFast state dict."""

    state_dict: dict[str, torch.Tensor]
    #: keys of the slow pathway, the fusions and the classifier, not needed for the fast feature
    ignored: list[str] = field(default_factory=list)
    #: BatchNorm counters absent from the checkpoint (older files), filled with 0 (unused in eval)
    filled_counters: list[str] = field(default_factory=list)


def fast_pathway_state_dict(
    model_state: Mapping[str, torch.Tensor], model: SlowFastFastPathway, source: str | Path | None = None
) -> FastPathwayLoad:
    """Select the fast-pathway tensors of a pytorchvideo `slowfast_r50` state dict under our names.

    Every key is accounted for: fast keys are renamed, slow/fusion/head keys are listed as ignored, and any
    other key means this is not a SlowFast R50 checkpoint (WeightsError)."""
    load = FastPathwayLoad(state_dict={})
    foreign = []
    for key, value in model_state.items():
        fast = _FAST.match(key)
        if fast:
            load.state_dict[f"blocks.{fast.group(1)}.{fast.group(2)}"] = value
        elif _NOT_FAST.match(key):
            load.ignored.append(key)
        else:
            foreign.append(key)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" ... (+{len(foreign) - 5} more)" if len(foreign) > 5 else "")
        raise WeightsError(f"not a SlowFast R50 state dict: {len(foreign)} unknown keys: {shown}", source)
    for key, own in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in load.state_dict:
            load.state_dict[key] = torch.zeros_like(own)
            load.filled_counters.append(key)
    return load


def slowfast_from_state_dict(
    model_state: Mapping[str, torch.Tensor], source: str | Path | None = None
) -> tuple[SlowFastFastPathway, FastPathwayLoad]:
    model = SlowFastFastPathway()
    load = fast_pathway_state_dict(model_state, model, source)
    load_strict(model, load.state_dict, source)
    log.info(
        "%s: loaded %d fast-pathway tensors; ignored %d slow-pathway/fusion/head tensors%s",
        source or "SlowFast state dict",
        len(load.state_dict),
        len(load.ignored),
        f"; filled {len(load.filled_counters)} missing BatchNorm counters" if load.filled_counters else "",
    )
    return model.eval(), load


def load_slowfast_fast(path: str | Path) -> tuple[SlowFastFastPathway, FastPathwayLoad]:
    """Load `SLOWFAST_8x8_R50.pyth` (weights under "model_state") or a safetensors export of the same keys."""
    model_state = extract_state_dict(read_checkpoint(path), keys=("model_state",))
    return slowfast_from_state_dict(model_state, path)

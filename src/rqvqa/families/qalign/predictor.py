"""The ``qalign`` model: Q-Align's own video score (the Table 3 baseline), not RQ-VQA.

A video is scored the way Q-Align's VQA evaluation does: one frame per second (the first frame of each second,
all of them), each padded to a square and encoded, all their visual tokens in the single image slot of
``USER: How would you rate the quality of this video?\\n<|image|> ASSISTANT: The quality of the video is``;
softmax over the five level words at the last position, dotted with (5, 4, 3, 2, 1).

Videos of a batch are scored one after the other: their prompts hold different numbers of visual tokens, and
padding them into one forward would change the attention the model saw in training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch

from rqvqa.families.qalign.checkpoint import default_device_dtype
from rqvqa.families.qalign.source import QAlign, one_align_dir
from rqvqa.precision import torch_dtype
from rqvqa.predictor import Predictor, Resources
from rqvqa.results import Prediction
from rqvqa.video.decode import Decoded, Product
from rqvqa.video.sampling import Sampling


class QAlignPredictor(Predictor):
    """Q-Align's own video score (Table 3 baseline), not RQ-VQA."""

    name: ClassVar[str] = "qalign"
    loaded = ("_engine",)

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        load_8bit: bool = False,
        engine: QAlign | None = None,
    ):
        """`weights`: the one-align folder (or a file in it), None for the registry's; `device`: default CUDA
        when available; `dtype`: default float16 on CUDA, float32 on the CPU; `load_8bit`: LLM.int8 through
        bitsandbytes; `engine`: an already built model + tokenizer (tests)."""
        self.weights = None if weights is None else Path(weights)
        self._device, self._dtype, self._load_8bit = device, torch_dtype(dtype), bool(load_8bit)
        self._engine = engine
        self._injected = engine is not None
        if not self._injected and self.weights is None:
            one_align_dir()  # a missing checkpoint is one error now, not one per video
        device_, dtype_ = default_device_dtype(device, self._dtype)
        self.device = device_
        precision = "int8" if self._load_8bit else str(dtype_).removeprefix("torch.")
        if self._injected:
            weights_id = "injected"
        else:
            weights_id = "default" if self.weights is None else self.weights.name
        self.card = self.make_card(weights=weights_id, options={"precision": precision})

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if self._injected:
            state["_engine"] = self._engine  # a network built in memory travels with the predictor
        return state

    def products(self) -> dict[str, Product]:
        return {"sample": Sampling(keyframes=True, mode="full")}

    def setup(self) -> None:
        if self._engine is None:
            folder = self.weights if self.weights is not None else one_align_dir()
            folder = folder.parent if folder.is_file() else folder  # a shard or config file names its folder
            self._engine = QAlign.from_pretrained(folder, self._device, self._dtype, self._load_8bit)

    @property
    def engine(self) -> QAlign:
        self.setup()
        return self._engine

    def resources(self) -> Resources:
        return Resources(gpus=int(self.device.type == "cuda"), memory_mb=17000, networks=True)

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        out = []
        for decoded in batch:
            sample = decoded["sample"]
            score, score_01 = self.engine.video_score(sample.keyframes or [])
            extra = {"score_0_1": score_01, "frames": list(sample.keyframe_indices), "prompt": "video"}
            out.append(Prediction(score=score, extra=extra))
        return out

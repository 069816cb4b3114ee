"""The ``fastvqa`` model: FAST-VQA-B's own video score (a baseline), from the project's seeded fragments.

The raw score is the mean of the VQA head's local quality map over the 4 clips; the reported score is rescaled
to 0-1 as the official `vqa.py` does (sigmoid of the standardised raw score). A batch of videos goes through
the backbone as one stream of clips (same scores as one video at a time, to float rounding).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rqvqa.families.fastvqa.network import FASTVQA_B_SCORE_MEAN, FASTVQA_B_SCORE_STD, FastVQA
from rqvqa.families.fastvqa.source import WEIGHTS_NAME, FastVQASource
from rqvqa.precision import torch_dtype
from rqvqa.predictor import Predictor, Resources
from rqvqa.results import Prediction
from rqvqa.video.decode import Decoded, Product
from rqvqa.video.sampling import Sampling


def rescale_score(raw: float) -> float:
    """FAST-VQA's `vqa.py` rescaling of a raw FAST-VQA-B score to [0, 1]."""
    return float(torch.sigmoid(torch.tensor((raw - FASTVQA_B_SCORE_MEAN) / FASTVQA_B_SCORE_STD)))


class FastVQAPredictor(Predictor):
    """FAST-VQA-B's own video score (a baseline), from the project's seeded fragments."""

    name: ClassVar[str] = "fastvqa"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: torch.dtype | str | None = None,
        seed: int = 0,
        model: FastVQA | None = None,
    ):
        """`weights`: the checkpoint file, or a folder holding it, or None for the registry's copy; `seed`:
        the fragment sampling's (same seed, same score); `model`: an already built network (tests)."""
        self.seed = int(seed)
        weights_file = weights is not None and Path(weights).is_file()
        self.source = FastVQASource(
            weights=Path(weights) if weights_file else WEIGHTS_NAME,
            weights_dir=None if weights is None or weights_file else weights,
            device=device,
            dtype=torch_dtype(dtype),
            model=model,
        )
        self.source.check()  # a missing checkpoint is one error now, not one per video
        self.card = self.make_card(
            weights=self.source.weights_id(), options={"seed": self.seed, "dtype": self.source.dtype_name()}
        )

    def products(self) -> dict[str, Product]:
        return {"sample": Sampling(fragments=True, seed=self.seed)}

    def setup(self) -> None:
        self.source.setup()

    def resources(self) -> Resources:
        return Resources(gpus=int(self.source.device.type == "cuda"), memory_mb=800, networks=True)

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        fragments = [d["sample"].fragments for d in batch]
        maps = self.source.clip_maps(np.concatenate(fragments))
        scores = self.source.clip_scores(maps)
        out, start = [], 0
        for clips in fragments:
            per_clip = scores[start : start + len(clips)]
            start += len(clips)
            raw = sum(per_clip) / len(per_clip)
            out.append(Prediction(score=rescale_score(raw), extra={"raw": raw, "clip_raw": per_clip}))
        return out

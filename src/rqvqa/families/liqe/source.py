"""LIQE feature source: RQ-VQA's 495 patch-averaged CLIP logits per native-resolution key frame.

The computation is `rqvqa.families.liqe.network.LiqeCLIP.frame_logits` (raw ``exp(logit_scale) * cosine``
logits in the official prompt order, averaged over the 15 selected 224x224 patches, no softmax).
`LiqeSource.score` gives LIQE's own quality score (1-5) per key frame and for the video (mean over key
frames), which is what the ``liqe`` predictor of the model zoo reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rqvqa.checkpoints import CheckpointSource
from rqvqa.errors import InputError
from rqvqa.families.liqe.network import LiqeCLIP, load_liqe, quality_score
from rqvqa.files import atomic_write
from rqvqa.source import Granularity

if TYPE_CHECKING:
    from rqvqa.video.sampling import VideoSample

#: registry name of the default weights (the official LIQE.pt RQ-VQA used); "liqe-mix" is pyiqa's re-host
WEIGHTS_NAME = "liqe"
#: bump when the prompts or their encoding change, to ignore older cached prompt features
PROMPT_CACHE_VERSION = 1


class LiqeSource(CheckpointSource):
    """`weights`: "liqe" (the official LIQE.pt RQ-VQA used), "liqe-mix" (pyiqa's re-host) or a path.
    `dtype` float16 on CUDA mimics the official features (computed in fp16); float32 is the default."""

    name: ClassVar[str] = "liqe"
    granularity: ClassVar[Granularity] = Granularity.FRAME
    needs: ClassVar[frozenset[str]] = frozenset({"keyframes"})
    version: ClassVar[int] = 1
    default_weights: ClassVar[str] = WEIGHTS_NAME

    def __init__(self, *args: Any, batch_size: int = 60, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size

    def setup(self) -> None:
        super().setup()
        # the 495 prompt features: once, where the model stage runs (a loaded checkpoint brings them from the
        # disk cache, a network built in memory computes them here)
        self._model.to(self.device, self.dtype).text_features()

    def load(self, path: Path) -> LiqeCLIP:
        model = load_liqe(path).to(self.device, self.dtype).eval()
        _install_cached_text_features(model, path)
        return model

    def logits(self, sample: VideoSample, preprocessing: str = "rqvqa") -> torch.Tensor:
        """(n_keyframes, 495) float32 logits; `preprocessing` "benchmark" is LIQE's own (predictor only)."""
        if not sample.keyframes:
            raise InputError("the video sample has no native-resolution key frames (needed by LIQE)")
        return self.model.frame_logits(sample.keyframes, self.batch_size, preprocessing)

    def extract(self, sample: VideoSample) -> np.ndarray:
        return self.logits(sample).cpu().numpy().astype(np.float32)

    def score(self, sample: VideoSample) -> tuple[float, np.ndarray]:
        """LIQE's quality score: (video score = mean over key frames, per-key-frame scores), range [1, 5]."""
        per_frame = quality_score(self.logits(sample)).cpu().numpy()
        return float(per_frame.mean()), per_frame


def text_cache_path(weights: Path, device: torch.device, dtype: torch.dtype) -> Path:
    """Disk cache of the 495 prompt features of one weights file: the text tower costs about a minute on a
    CPU (495 prompts x 24 tokens through a 12-layer transformer) and depends only on the weights, the device
    type and the dtype. Keyed by the file's absolute path, size and modification time."""
    from rqvqa.files import rqvqa_home

    stat = weights.stat()
    blob = (
        f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{device.type}|{dtype}|{PROMPT_CACHE_VERSION}"
    )
    return rqvqa_home() / "liqe" / f"text-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.safetensors"


def _install_cached_text_features(model: LiqeCLIP, weights: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = text_cache_path(weights, model.device, model.dtype)
    if path.is_file():
        try:
            model.set_text_features(load_file(str(path))["text_features"])
            return
        except Exception:  # unreadable or stale cache entry: recompute and overwrite it
            path.unlink(missing_ok=True)
    features = model.text_features().cpu().contiguous()
    # atomic: a concurrent reader sees the old file or the complete new one
    atomic_write(path, lambda tmp: save_file({"text_features": features}, str(tmp)))

"""LIQE: CLIP ViT-B/32 (QuickGELU) scored against 495 (quality x scene x distortion) prompts.

The network is open_clip's ``ViT-B-32-quickgelu`` built without pretrained weights; LIQE's fine-tuned weights
are loaded on top (`load_liqe_state_dict`). Both official files have the OpenAI CLIP key layout, which is
also open_clip's: ``LIQE.pt`` is the bare state dict, pyiqa's ``liqe_mix.pt`` wraps it as
``{"params": {"clip_model.<key>": ...}}``.

Per frame (RQ-VQA's extractor, `docs/liqe.md`): the native-resolution RGB frame in [0, 1] is CLIP-normalised,
cut into 224x224 patches at stride 32 in raster order (right/bottom remainders dropped), 15 patches are kept
at indices ``k * (N // 15)``, and the 495 logits ``exp(logit_scale) * cos(image, prompt)`` are averaged over
those patches. LIQE's quality score is the expectation of the quality marginal of ``softmax`` over all 495.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rqvqa.checkpoints import extract_state_dict, load_strict, read_checkpoint, strip_prefix
from rqvqa.errors import InputError
from rqvqa.video.sampling import check_aspect

# Word lists and order of the official code (LIQE.py / pyiqa liqe_arch.py), not the paper's wording.
QUALITIES = ("bad", "poor", "fair", "good", "perfect")
SCENES = ("animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others")
DISTORTIONS = (
    "jpeg2000 compression",
    "jpeg compression",
    "noise",
    "blur",
    "color",
    "contrast",
    "overexposure",
    "underexposure",
    "spatial",
    "quantization",
    "other",
)
N_PROMPTS = len(QUALITIES) * len(SCENES) * len(DISTORTIONS)  # 495

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PATCH = 224
STRIDE = 32
# LIQE's own benchmark preprocessing (BIQA_benchmark.py): AdaptiveResize(768), stride 48 for large frames
BENCHMARK_SHORT_SIDE = 768
BENCHMARK_LARGE_SIDE = 1024
BENCHMARK_STRIDE = 48
PREPROCESSING = ("rqvqa", "benchmark")
N_PATCHES = 15

OPEN_CLIP_MODEL = "ViT-B-32-quickgelu"


def prompts() -> list[str]:
    """The 495 prompts, quality outermost: index = q * 99 + s * 11 + d."""
    return [
        f"a photo of a {scene} with {distortion} artifacts, which is of {quality} quality"
        for quality, scene, distortion in itertools.product(QUALITIES, SCENES, DISTORTIONS)
    ]


def prompt_index(quality: int, scene: int, distortion: int) -> int:
    return (quality * len(SCENES) + scene) * len(DISTORTIONS) + distortion


# ----------------------------------------------------------------------------------------------- patching


@dataclass(frozen=True)
class PatchGrid:
    """Where the kept 224x224 patches of an (height, width) frame sit."""

    height: int
    width: int
    rows: int
    cols: int
    stride: int
    #: raster indices of the kept patches (into the rows x cols grid)
    indices: tuple[int, ...]

    @property
    def n_patches(self) -> int:
        return self.rows * self.cols

    def origins(self) -> list[tuple[int, int]]:
        """(top, left) pixel of each kept patch."""
        return [(self.stride * (i // self.cols), self.stride * (i % self.cols)) for i in self.indices]


def patch_grid(height: int, width: int, n_keep: int = N_PATCHES, stride: int = STRIDE) -> PatchGrid:
    """The official selection: step = N // 15, indices k * step for k < 15.

    With fewer than 15 patches the official step is 0 (patch 0 fifteen times); we keep every patch instead,
    like pyiqa (``step = max(1, N // min(15, N))``). Both sides must be at least 224 (see `prepare_frame`).
    """
    if height < PATCH or width < PATCH:
        raise InputError(f"frame {width}x{height} is smaller than the {PATCH}x{PATCH} LIQE patch")
    rows = (height - PATCH) // stride + 1
    cols = (width - PATCH) // stride + 1
    n = rows * cols
    if n < n_keep:
        indices = tuple(range(n))
    else:
        step = n // n_keep
        indices = tuple(k * step for k in range(n_keep))
    return PatchGrid(height, width, rows, cols, stride, indices)


def prepare_frame(frame: np.ndarray, preprocessing: str = "rqvqa") -> torch.Tensor:
    """uint8 frame -> float (3, H, W) in [0, 1], RGB, both sides >= 224.

    - (H, W) or (H, W, 1) greyscale is replicated to three channels (LIQE was trained on RGB only);
    - (H, W, 4) RGBA drops alpha;
    - a frame with a side under 224 is upscaled (bicubic, clamped to [0, 1]) so that its short side is 224,
      keeping the aspect ratio. LIQE has no rule for this (its code asserts or fails on such inputs). Such a
      frame more elongated than 8:1 is refused (`rqvqa.video.sampling.check_aspect`);
    - ``preprocessing="benchmark"`` first applies LIQE's benchmark ``AdaptiveResize(768)``: a frame whose
      sides are both >= 768 is resized (PIL bilinear) so its short side is 768, the long side truncated as
      torchvision's Resize does.
    """
    if preprocessing not in PREPROCESSING:
        raise InputError(f"LIQE preprocessing must be one of {PREPROCESSING}, not {preprocessing!r}")
    if frame.dtype != np.uint8:
        raise InputError(f"LIQE frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or 0 in frame.shape:
        raise InputError(f"LIQE frames must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}")
    frame = frame[:, :, :3]
    if preprocessing == "benchmark" and min(frame.shape[:2]) >= BENCHMARK_SHORT_SIDE:
        frame = _adaptive_resize(frame)
    x = torch.tensor(frame).permute(2, 0, 1).float().div_(255.0)  # a copy: frames may be read-only
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    h, w = x.shape[1:]
    if min(h, w) < PATCH:
        check_aspect(w, h, PATCH, "LIQE's upscaled frames")  # a 4000x16 frame would be 56000x224
        scale = PATCH / min(h, w)
        size = (max(PATCH, round(h * scale)), max(PATCH, round(w * scale)))
        x = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False)[0].clamp_(0.0, 1.0)
    return x


def _adaptive_resize(frame: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = frame.shape[:2]
    short, long = sorted((h, w))
    new_long = int(BENCHMARK_SHORT_SIDE * long / short)
    size = (new_long, BENCHMARK_SHORT_SIDE) if w >= h else (BENCHMARK_SHORT_SIDE, new_long)  # PIL: (w, h)
    image = Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)  # "L" or "RGB"
    return np.asarray(image.resize(size, Image.BILINEAR)).reshape(size[1], size[0], -1)


def stride_for(height: int, width: int, preprocessing: str = "rqvqa") -> int:
    """Stride 32 (RQ-VQA, pyiqa); the benchmark uses 48 once a (resized) side reaches 1024."""
    if preprocessing == "benchmark" and max(height, width) >= BENCHMARK_LARGE_SIDE:
        return BENCHMARK_STRIDE
    return STRIDE


def select_patches(frame: torch.Tensor, grid: PatchGrid | None = None) -> torch.Tensor:
    """(3, H, W) -> (n, 3, 224, 224): the kept patches, without materialising the whole grid."""
    grid = grid or patch_grid(frame.shape[1], frame.shape[2])
    return torch.stack([frame[:, t : t + PATCH, left : left + PATCH] for t, left in grid.origins()])


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(-1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(-1, 3, 1, 1)
    return (x - mean) / std


# ------------------------------------------------------------------------------------------------- scores


def quality_marginals(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """softmax over all 495, then the quality (5), scene (9) and distortion (11) marginals."""
    p = logits.float().softmax(dim=-1).unflatten(-1, (len(QUALITIES), len(SCENES), len(DISTORTIONS)))
    return {"quality": p.sum(dim=(-1, -2)), "scene": p.sum(dim=(-1, -3)), "distortion": p.sum(dim=(-2, -3))}


def quality_score(logits: torch.Tensor) -> torch.Tensor:
    """LIQE's score in [1, 5] (higher is better): sum_k k * P(quality_k)."""
    q = quality_marginals(logits)["quality"]
    levels = torch.arange(1, len(QUALITIES) + 1, device=q.device, dtype=q.dtype)
    return (q * levels).sum(dim=-1)


# ---------------------------------------------------------------------------------------------------- net


class LiqeCLIP(nn.Module):
    """An open_clip CLIP model plus the 495 LIQE prompts; text features are computed once per weights."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip
        #: (device, dtype, features): prompt features follow the weights, device and dtype they came from
        self._text_cache: tuple[torch.device, torch.dtype, torch.Tensor] | None = None

    def load_clip_state_dict(self, state_dict: Mapping[str, torch.Tensor], source: str | Path | None = None):
        """Strictly load an OpenAI-layout CLIP state dict (dtypes are cast to the model's)."""
        load_strict(self.clip, state_dict, source)
        self._text_cache = None

    @property
    def device(self) -> torch.device:
        return self.clip.logit_scale.device

    @property
    def dtype(self) -> torch.dtype:
        return self.clip.visual.conv1.weight.dtype

    def encode_prompts(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP text features of (n, L) token ids, L <= context length.

        Equal to open_clip's ``encode_text`` on the 77-token padding: the text transformer is causal and
        the feature is read at the end-of-text token, so positions after the longest prompt never matter;
        cutting them makes the one-off prompt encoding about 3x cheaper.
        """
        clip = self.clip
        length = tokens.shape[1]
        x = clip.token_embedding(tokens).to(self.dtype) + clip.positional_embedding[:length].to(self.dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = clip.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return x @ clip.text_projection

    @torch.inference_mode()
    def text_features(self, batch_size: int = 165) -> torch.Tensor:
        """(495, D) L2-normalised prompt features in float32, cached until the weights/device change."""
        cache = self._text_cache
        if cache is None or cache[:2] != (self.device, self.dtype):
            tokens = tokenize_prompts().to(self.device)
            feats = torch.cat([self.encode_prompts(t) for t in tokens.split(batch_size)]).float()
            cache = self._text_cache = (self.device, self.dtype, F.normalize(feats, dim=-1))
        return cache[2]

    def set_text_features(self, features: torch.Tensor) -> None:
        """Install the (495, D) L2-normalised prompt features `text_features` computed earlier for these
        weights, device type and dtype (see `LiqeSource`'s disk cache); stored as given, bit for bit."""
        if features.shape[0] != N_PROMPTS:
            raise InputError(f"expected {N_PROMPTS} prompt features, got {tuple(features.shape)}")
        self._text_cache = (self.device, self.dtype, features.to(self.device, torch.float32))

    @torch.inference_mode()
    def patch_logits(self, patches: torch.Tensor) -> torch.Tensor:
        """(n, 3, 224, 224) CLIP-normalised patches -> (n, 495) = exp(logit_scale) * cosine, float32."""
        image = F.normalize(self.clip.encode_image(patches.to(self.device, self.dtype)).float(), dim=-1)
        return self.clip.logit_scale.float().exp() * image @ self.text_features().T

    @torch.inference_mode()
    def frame_logits(
        self, frames: Iterable[np.ndarray], batch_size: int = 60, preprocessing: str = "rqvqa"
    ) -> torch.Tensor:
        """RQ-VQA's LIQE feature: (n_frames, 495) patch-averaged logits, float32 (no softmax).

        ``preprocessing="benchmark"`` follows LIQE's own benchmark instead (AdaptiveResize(768), stride 48
        for large frames); the RQ-VQA feature always uses the default.
        """
        crops = []
        for frame in frames:
            x = prepare_frame(frame, preprocessing).to(self.device)
            h, w = x.shape[1:]
            crops.append(select_patches(x, patch_grid(h, w, stride=stride_for(h, w, preprocessing))))
        if not crops:
            raise InputError("no frames given to LIQE")
        counts = [len(c) for c in crops]
        patches = normalise(torch.cat(crops))
        logits = torch.cat([self.patch_logits(batch) for batch in patches.split(batch_size)])
        return torch.stack([chunk.mean(dim=0) for chunk in logits.split(counts)])


def tokenize_prompts(texts: Sequence[str] | None = None) -> torch.Tensor:
    """CLIP BPE ids (open_clip's bundled vocabulary, no download), cut to the longest prompt."""
    import open_clip

    tokens = open_clip.get_tokenizer(OPEN_CLIP_MODEL)(list(texts or prompts()))
    length = int((tokens != 0).sum(dim=1).max())
    return tokens[:, :length]


def build_liqe(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, config: Mapping | None = None
) -> LiqeCLIP:
    """ViT-B/32 with QuickGELU (random init until weights are loaded). `config` overrides the architecture
    with open_clip ``CLIP`` arguments (``embed_dim``, ``vision_cfg``, ``text_cfg`` dicts), for tiny test and
    benchmark networks."""
    import open_clip

    # built from the config directly: create_model(pretrained=None) would log a "no pretrained weights"
    # warning, misleading when LIQE weights are loaded right after
    config = config or open_clip.get_model_config(OPEN_CLIP_MODEL)
    clip = open_clip.model.CLIP(
        embed_dim=config["embed_dim"],
        vision_cfg=open_clip.model.CLIPVisionCfg(**config["vision_cfg"]),
        text_cfg=open_clip.model.CLIPTextCfg(**config["text_cfg"]),
        quick_gelu=True,
    )
    return LiqeCLIP(clip).to(device=device, dtype=dtype).eval()


def liqe_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """OpenAI-layout keys from LIQE.pt (bare, or under ``model_state_dict``) or pyiqa's liqe_mix.pt
    (``params`` with ``clip_model.`` and possibly ``module.`` prefixes)."""
    state = extract_state_dict(checkpoint, keys=("params", "model_state_dict", "state_dict"))
    state = strip_prefix(state, "module.")
    return strip_prefix(state, "clip_model.")


def load_liqe(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    config: Mapping | None = None,
) -> LiqeCLIP:
    """Build the network and load LIQE.pt or liqe_mix.pt strictly (any stored dtype is cast to `dtype`)."""
    model = build_liqe(config=config)
    model.load_clip_state_dict(liqe_state_dict(read_checkpoint(path)), source=path)
    return model.to(device=device, dtype=dtype).eval()

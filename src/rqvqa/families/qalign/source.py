"""Q-Align / OneAlign (mPLUG-Owl2) as a feature source and as a quality scorer.

RQ-VQA's 4096-d feature of a key frame: split the frame into upper and lower halves (rows ``[0, H//2)`` and
``[H//2, H)``), pad each to a centred square with the CLIP mean colour (122, 116, 104), resize to 448 with PIL
bicubic, CLIP-normalise, run mPLUG-Owl2 on the evaluation prompt, take the LLM's last hidden state after the
final RMSNorm, average it over all token positions (text and visual) and then over the two halves.

The prompt ids are built explicitly, BOS first, because current tokenizers no longer add it silently:
``[BOS] + ids("USER: How would you rate the quality of this image?\\n") + [IMAGE] +
ids(" ASSISTANT: The quality of the image is")``, each chunk encoded by the checkpoint's sentencepiece model
(what the slow LLaMA tokenizer of transformers 4.3x produced).

Q-Align's own score: softmax over the logits of the five level words (excellent, good, fair, poor, bad) at the
last position, dotted with (5, 4, 3, 2, 1) -> [1, 5], or with (1, 0.75, 0.5, 0.25, 0) -> [0, 1]. The `qalign`
predictor of the model zoo (`rqvqa.families.qalign.predictor`) uses it on videos.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from rqvqa.errors import InputError, WeightsError
from rqvqa.families.qalign.config import IMAGE_TOKEN_INDEX
from rqvqa.source import FeatureSource, Granularity

if TYPE_CHECKING:
    from rqvqa.families.qalign.network import MplugOwl2
    from rqvqa.video.sampling import VideoSample

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: upstream's expand2square background: the CLIP mean times 255, truncated
PAD_COLOUR = tuple(int(m * 255) for m in CLIP_MEAN)

#: (text before the image, text after it) of the template-built evaluation prompts
IMAGE_PROMPT = (
    "USER: How would you rate the quality of this image?\n",
    " ASSISTANT: The quality of the image is",
)
VIDEO_PROMPT = (
    "USER: How would you rate the quality of this video?\n",
    " ASSISTANT: The quality of the video is",
)
LEVELS = ("excellent", "good", "fair", "poor", "bad")
WEIGHTS_1_5 = (5.0, 4.0, 3.0, 2.0, 1.0)
WEIGHTS_0_1 = (1.0, 0.75, 0.5, 0.25, 0.0)
_BICUBIC = Image.Resampling.BICUBIC


class SentencePieceTokenizer:
    """The LLaMA sentencepiece model (``tokenizer.model``); `encode` never adds BOS/EOS."""

    def __init__(self, model_file: str | Path):
        import sentencepiece

        model_file = Path(model_file)
        self.model_file = model_file
        if not model_file.is_file():
            raise WeightsError("tokenizer model not found", model_file)
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        except (OSError, RuntimeError) as exc:
            raise WeightsError(f"not a sentencepiece model ({exc})", model_file) from exc
        self.bos_id = int(self._sp.bos_id())
        if self.bos_id < 0:
            raise WeightsError("the sentencepiece model has no BOS token", model_file)

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text))


def prompt_ids(tokenizer: SentencePieceTokenizer, prompt: tuple[str, str] = IMAGE_PROMPT) -> list[int]:
    """BOS + ids(before) + IMAGE_TOKEN_INDEX + ids(after)."""
    before, after = prompt
    return [tokenizer.bos_id, *tokenizer.encode(before), IMAGE_TOKEN_INDEX, *tokenizer.encode(after)]


def level_token_ids(tokenizer: SentencePieceTokenizer) -> list[int]:
    """Id of the first piece of each level word (upstream: the token after BOS)."""
    return [tokenizer.encode(word)[0] for word in LEVELS]


def scores_from_logits(last_logits: torch.Tensor, level_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Logits at the last position (B, vocab) -> (score in [1, 5], score in [0, 1]), each (B,)."""
    probs = torch.softmax(last_logits.float()[:, list(level_ids)], dim=-1)
    s15 = probs @ torch.tensor(WEIGHTS_1_5, device=probs.device)
    s01 = probs @ torch.tensor(WEIGHTS_0_1, device=probs.device)
    return s15.cpu().numpy(), s01.cpu().numpy()


def pad_to_square(image: np.ndarray, colour: tuple[int, int, int] = PAD_COLOUR) -> np.ndarray:
    """Centre (H, W, 3) uint8 on a square canvas of side max(H, W) filled with `colour` (upstream
    expand2square: offset (side - short) // 2)."""
    h, w = image.shape[:2]
    if h == w:
        return image
    side = max(h, w)
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = colour
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = image
    return canvas


def split_halves(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper rows [0, H//2) and lower rows [H//2, H) (RQ-VQA's crop boxes)."""
    mid = frame.shape[0] // 2
    return frame[:mid], frame[mid:]


#: rows of a tall image padded at a time in `resize_padded_square`
_STRIP = 256


def resize_padded_square(
    image: np.ndarray, size: int, colour: tuple[int, int, int] = PAD_COLOUR
) -> np.ndarray:
    """``PIL.resize(pad_to_square(image), (size, size), BICUBIC)``, bit for bit, without the full canvas.

    PIL resamples horizontally (rounding to uint8) and then vertically. For a wide image the padding is whole
    rows, whose horizontal pass is one constant row; so the horizontal pass runs on the image alone, the
    constant rows are stacked around it, and only the vertical pass sees the square. About 3-5x faster for a
    1920x540 half-frame. A tall image's padding is whole columns: its horizontal pass runs on padded strips of
    `_STRIP` rows, so the square canvas (805 MB for a 64x16384 frame) is never built.
    """
    h, w = image.shape[:2]
    if h == w:
        return np.asarray(Image.fromarray(image).resize((size, size), _BICUBIC))
    if h > w:
        left = (h - w) // 2
        narrowed = np.empty((h, size, 3), dtype=np.uint8)
        for top in range(0, h, _STRIP):
            strip = np.empty((min(_STRIP, h - top), h, 3), dtype=np.uint8)
            strip[:] = colour
            strip[:, left : left + w] = image[top : top + _STRIP]
            narrowed[top : top + len(strip)] = np.asarray(
                Image.fromarray(strip).resize((size, len(strip)), _BICUBIC)
            )
        return np.asarray(Image.fromarray(narrowed).resize((size, size), _BICUBIC))
    band = np.asarray(Image.fromarray(image).resize((size, h), _BICUBIC))
    pad_row = np.asarray(Image.new("RGB", (w, 1), colour).resize((size, 1), _BICUBIC))
    stacked = np.empty((w, size, 3), dtype=np.uint8)
    top = (w - h) // 2
    stacked[:top] = pad_row
    stacked[top : top + h] = band
    stacked[top + h :] = pad_row
    return np.asarray(Image.fromarray(stacked).resize((size, size), _BICUBIC))


def to_pixels(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> (3, size, size) float32: pad to square, PIL bicubic resize, CLIP normalise.

    The arithmetic follows CLIPImageProcessor: rescale in float64 then cast to float32, normalise in float32.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if min(image.shape[:2]) == 0:
        raise InputError(f"empty image {image.shape}")
    resized = resize_padded_square(np.ascontiguousarray(image), size)
    x = (resized * (1 / 255)).astype(np.float32)
    x = (x - np.asarray(CLIP_MEAN, dtype=np.float32)) / np.asarray(CLIP_STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


class QAlign:
    """mPLUG-Owl2 + tokenizer: RQ-VQA frame features and Q-Align scores."""

    def __init__(self, model: MplugOwl2, tokenizer: SentencePieceTokenizer, batch_size: int = 16):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        self.workers = max(1, min(8, os.cpu_count() or 1))
        self.image_size = model.cfg.vision.image_size
        self.level_ids = level_token_ids(tokenizer)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        load_8bit: bool = False,
        batch_size: int = 16,
    ) -> QAlign:
        """Checkpoint folder with ``config.json`` (optional), the weight shards and ``tokenizer.model``."""
        from rqvqa.families.qalign.checkpoint import load_owl2

        path = Path(path)
        tokenizer = SentencePieceTokenizer(path / "tokenizer.model")
        return cls(load_owl2(path, device=device, dtype=dtype, load_8bit=load_8bit), tokenizer, batch_size)

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    def _ids(self, prompt: tuple[str, str], rows: int) -> torch.Tensor:
        ids = torch.tensor(prompt_ids(self.tokenizer, prompt), dtype=torch.long, device=self.device)
        return ids.unsqueeze(0).expand(rows, -1)

    def pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Preprocessed images (N, 3, S, S) on the model's device."""
        # PIL and numpy release the GIL, so threads overlap the per-image resizes.
        with ThreadPoolExecutor(max_workers=min(len(images), self.workers)) as pool:
            pixels = list(pool.map(lambda im: to_pixels(im, self.image_size), images))
        return torch.stack(pixels).to(self.device)

    @torch.inference_mode()
    def frame_features(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """RQ-VQA feature of each frame: (n_frames, hidden) float32."""
        if not frames:
            return np.zeros((0, self.model.cfg.llm.hidden_size), dtype=np.float32)
        halves = [half for frame in frames for half in split_halves(frame)]
        means = []
        for start in range(0, len(halves), self.batch_size):
            chunk = halves[start : start + self.batch_size]
            out = self.model(self._ids(IMAGE_PROMPT, len(chunk)), self.pixels(chunk))
            means.append(out.last_hidden_state.float().mean(dim=1))
        per_half = torch.cat(means).view(len(frames), 2, -1)
        return per_half.mean(dim=1).cpu().numpy()

    @torch.inference_mode()
    def image_scores(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Q-Align image quality of each image: (scores in [1, 5], scores in [0, 1])."""
        s15, s01 = [], []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            out = self.model(self._ids(IMAGE_PROMPT, len(chunk)), self.pixels(chunk))
            a, b = scores_from_logits(self.model.lm_head(out.last_hidden_state[:, -1]), self.level_ids)
            s15.append(a)
            s01.append(b)
        return np.concatenate(s15), np.concatenate(s01)

    @torch.inference_mode()
    def video_score(self, frames: Sequence[np.ndarray]) -> tuple[float, float]:
        """Q-Align video quality: the visual tokens of all frames (1 per second upstream) fill the single
        image slot of the video prompt. Returns (score in [1, 5], score in [0, 1])."""
        if not frames:
            raise InputError("no frames to score")
        out = self.model(self._ids(VIDEO_PROMPT, 1), self.pixels(frames), images_per_slot=[len(frames)])
        s15, s01 = scores_from_logits(self.model.lm_head(out.last_hidden_state[:, -1]), self.level_ids)
        return float(s15[0]), float(s01[0])


def one_align_files(weights_dir: str | Path | None = None) -> list[Path]:
    """The one-align files (both shards, config.json, tokenizer.model), found and checked through the weights
    registry (group ``qalign``); they must sit in one folder, as the hub and the cache hold them."""
    from rqvqa import weights

    files = [weights.resolve(name, weights_dir) for name in weights.groups()["qalign"]]
    folders = sorted({str(p.parent) for p in files})
    if len(folders) > 1:
        raise WeightsError(
            f"the one-align files are spread over {', '.join(folders)}: put both shards, config.json and "
            "tokenizer.model in one folder"
        )
    return files


def one_align_dir(weights_dir: str | Path | None = None) -> Path:
    """Folder of the one-align checkpoint."""
    return one_align_files(weights_dir)[0].parent


class QAlignSource(FeatureSource):
    """RQ-VQA's Q-Align feature: one 4096-d row per key frame (see the module docstring)."""

    name = "qalign"
    granularity = Granularity.FRAME
    needs = frozenset({"keyframes"})
    version = 1

    def __init__(
        self,
        weights_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        load_8bit: bool = False,
        batch_size: int = 16,
        engine: QAlign | None = None,
    ):
        from rqvqa.precision import torch_dtype

        self._weights_dir = weights_dir
        self._device, self._dtype = device, torch_dtype(dtype)
        self._load_8bit, self._batch_size = load_8bit, batch_size
        self._engine = engine
        self._injected = engine is not None
        #: content hash of the weights; an injected engine (tests, benchmarks) has none
        self._weights_sha256: str | None = None

    def check(self) -> None:
        if not self._injected:
            one_align_files(self._weights_dir)

    def setup(self) -> None:
        if self._engine is None:
            self._engine = QAlign.from_pretrained(
                one_align_dir(self._weights_dir), self._device, self._dtype, self._load_8bit, self._batch_size
            )

    @property
    def engine(self) -> QAlign:
        self.setup()
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not self._injected:
            state["_engine"] = None  # loaded again where the source lands
        return state

    def config(self) -> dict[str, Any]:
        from rqvqa.families.qalign.checkpoint import default_device_dtype

        _, dtype = default_device_dtype(self._device, self._dtype)
        # Precision changes the numbers slightly (the released RQ-VQA head was trained on int8 features).
        config = {
            "weights": "q-future/one-align",
            "precision": "int8" if self._load_8bit else str(dtype).removeprefix("torch."),
            "prompt": "template, BOS first",
        }
        if not self._injected:
            digest = self._content_sha256()
            if digest is not None:
                config["sha256"] = digest
        return config

    def _content_sha256(self) -> str | None:
        """One hash over the contents of the four one-align files (None while they cannot be found); each
        file is hashed once per path, size and mtime."""
        if self._weights_sha256 is None:
            from rqvqa.weights import content_sha256

            try:
                files = one_align_files(self._weights_dir)
            except (WeightsError, OSError):
                return None
            joined = "".join(f"{p.name}:{content_sha256(p)};" for p in files)
            self._weights_sha256 = hashlib.sha256(joined.encode()).hexdigest()
        return self._weights_sha256

    def extract(self, sample: VideoSample) -> np.ndarray:
        frames = sample.keyframes
        if not frames:
            raise InputError("the qalign source needs the key frames (VideoSample.keyframes)")
        if len(sample.keyframe_indices) != len(frames):
            return self.engine.frame_features(frames)
        # Official sampling repeats the last key frame up to 8 rows: run the model once per distinct frame.
        unique = list(dict.fromkeys(sample.keyframe_indices))
        first_row = {index: sample.keyframe_indices.index(index) for index in unique}
        features = self.engine.frame_features([frames[first_row[i]] for i in unique])
        return features[[unique.index(i) for i in sample.keyframe_indices]]

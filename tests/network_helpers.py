"""Tiny networks with random weights, built the same way by every test that needs one: LIQE's CLIP, FAST-VQA's
Video Swin, Q-Align's mPLUG-Owl2 (with a sentencepiece tokenizer trained on the spot). Importable by name, so
engines can pickle predictors holding them into worker processes and Ray actors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: LIQE's CLIP, a few thousand parameters
LIQE_TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_liqe(seed: int = 0):
    from rqvqa.families.liqe.network import build_liqe

    torch.manual_seed(seed)
    model = build_liqe(config=LIQE_TINY)
    with torch.no_grad():  # a non-trivial scale so logits are not all ~equal
        model.clip.logit_scale.fill_(np.log(100.0))
    return model


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, including both bias tables, so FAST-VQA's fragment gate matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.7 if name.endswith("bias_table") else 0.2
            p.copy_(
                torch.randn(p.shape, generator=gen) * scale + (1.0 if name.endswith("norm.weight") else 0)
            )
    return model.eval()


def tiny_fastvqa(seed: int = 0):
    from rqvqa.families.fastvqa.network import FastVQA, VideoSwinConfig

    config = VideoSwinConfig(embed_dim=8, depths=(2, 1, 1, 1), num_heads=(1, 1, 1, 1))
    return randomise(FastVQA(config), seed)


def random_owl2(seed: int = 0, cfg=None):
    """Tiny mPLUG-Owl2, every parameter random (the default init leaves norms at 1 and embeddings at 0)."""
    from rqvqa.families.qalign.config import TINY_CONFIG
    from rqvqa.families.qalign.network import MplugOwl2

    torch.manual_seed(seed)
    model = MplugOwl2(cfg or TINY_CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name or name.endswith("ffn_ln.weight"):
                p.uniform_(0.5, 1.5)
            elif p.ndim == 1:
                p.normal_(0, 0.1)
            else:
                p.normal_(0, 1 / max(1, p.shape[-1]) ** 0.5 if p.ndim == 2 and "embed" not in name else 1.0)
    return model.eval()


def train_tokenizer(folder: Path):
    """A tiny LLaMA-like sentencepiece model (BOS 1, byte fallback, identity normalisation) trained here."""
    import sentencepiece

    from rqvqa.families.qalign.source import IMAGE_PROMPT, LEVELS, SentencePieceTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    lines = [IMAGE_PROMPT[0].strip(), IMAGE_PROMPT[1].strip(), " ".join(LEVELS), "quality of the video"]
    corpus.write_text("\n".join(lines * 20))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return SentencePieceTokenizer(folder / "tokenizer.model")


def tiny_qalign(folder: Path, seed: int = 13):
    """A Q-Align engine (model + tokenizer) small enough for the CPU."""
    from rqvqa.families.qalign.source import QAlign

    return QAlign(random_owl2(seed), train_tokenizer(folder))

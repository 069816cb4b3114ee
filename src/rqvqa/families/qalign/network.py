"""mPLUG-Owl2 (``MPLUGOwl2LlamaForCausalLM``), the network behind Q-Align / OneAlign, on plain torch.

Only what features and scores need: no generation, no KV cache, no padding. State-dict keys are the official
ones (``model.embed_tokens``, ``model.layers.*``, ``model.norm``, ``model.vision_model.*``,
``model.visual_abstractor.*``, ``lm_head``), so ``q-future/one-align`` loads without key remapping.

Splicing: every ``IMAGE_TOKEN_INDEX`` (-200) in ``input_ids`` is replaced by the visual tokens of the next
image(s) in order (row by row, left to right); ``modality_indicators`` is 1 there and 0 on text. With
``images_per_slot`` several images fill one slot, concatenated (Q-Align's video scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rqvqa.errors import InputError
from rqvqa.families.qalign.config import IMAGE_TOKEN_INDEX, Owl2Config
from rqvqa.families.qalign.llama import DecoderLayer, ModalityRouting, RMSNorm, rope_tables
from rqvqa.families.qalign.vision import VisionModel, VisualAbstractor


@dataclass
class Owl2Output:
    #: LLM hidden state after the final RMSNorm, (B, L, hidden)
    last_hidden_state: torch.Tensor
    #: (B, L) int64, 0 = text, 1 = visual
    modality_indicators: torch.Tensor
    #: abstractor output per image, (n_images, queries + 1, hidden)
    visual_tokens: torch.Tensor


class Owl2Model(nn.Module):
    """LLaMA with modality-adaptive layers plus the vision encoder and abstractor (official ``model.``)."""

    def __init__(self, cfg: Owl2Config):
        super().__init__()
        llm = cfg.llm
        self.embed_tokens = nn.Embedding(llm.vocab_size, llm.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(llm) for _ in range(llm.num_hidden_layers))
        self.norm = RMSNorm(llm.hidden_size, llm.rms_norm_eps)
        self.vision_model = VisionModel(cfg.vision)
        self.visual_abstractor = VisualAbstractor(cfg.abstractor, llm.hidden_size)


class MplugOwl2(nn.Module):
    def __init__(self, cfg: Owl2Config):
        super().__init__()
        self.cfg = cfg
        self.model = Owl2Model(cfg)
        self.lm_head = nn.Linear(cfg.llm.hidden_size, cfg.llm.vocab_size, bias=False)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised pixels (N, 3, S, S) -> visual tokens (N, queries + 1, hidden)."""
        pixels = images.to(self.model.vision_model.embeddings.patch_embed.weight.dtype)
        return self.model.visual_abstractor(self.model.vision_model(pixels))

    def splice(
        self,
        input_ids: torch.Tensor,
        visual_tokens: torch.Tensor,
        images_per_slot: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed the text and put the visual tokens in the image slots -> (embeddings, indicators)."""
        slots = int((input_ids == IMAGE_TOKEN_INDEX).sum())
        per_slot = [1] * slots if images_per_slot is None else list(images_per_slot)
        if len(per_slot) != slots or sum(per_slot) != visual_tokens.shape[0]:
            raise InputError(
                f"{slots} image slots holding {per_slot} images do not match {visual_tokens.shape[0]} images"
            )
        blocks = list(visual_tokens.split(per_slot, dim=0))
        embed = self.model.embed_tokens
        rows, indicators = [], []
        for ids in input_ids:
            parts, kinds = [], []
            positions = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            start = 0
            for pos in [*positions, len(ids)]:
                if pos > start:
                    parts.append(embed(ids[start:pos]))
                    kinds.append(torch.zeros(pos - start, dtype=torch.long))
                if pos < len(ids):
                    block = blocks.pop(0).flatten(0, 1).to(embed.weight.dtype)
                    parts.append(block)
                    kinds.append(torch.ones(block.shape[0], dtype=torch.long))
                start = pos + 1
            rows.append(torch.cat(parts))
            indicators.append(torch.cat(kinds))
        if len({r.shape[0] for r in rows}) != 1:
            raise InputError("every row must have the same length after splicing (padding is not supported)")
        return torch.stack(rows), torch.stack(indicators).to(input_ids.device)

    def forward(
        self,
        input_ids: torch.Tensor,
        images: torch.Tensor,
        images_per_slot: Sequence[int] | None = None,
    ) -> Owl2Output:
        visual_tokens = self.encode_images(images)
        x, indicators = self.splice(input_ids, visual_tokens, images_per_slot)
        routing = ModalityRouting.from_indicators(indicators)
        cos, sin = rope_tables(self.cfg.llm, x.shape[1], x.device, x.dtype)
        for layer in self.model.layers:
            x = layer(x, routing, cos, sin)
        return Owl2Output(self.model.norm(x), indicators, visual_tokens)

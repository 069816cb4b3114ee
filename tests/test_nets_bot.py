"""BoT "MHSA" stack: golden comparison with the official botnet.py and structural checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rqvqa.checkpoints import load_strict
from rqvqa.errors import InputError
from rqvqa.families.rqvqa.bot import AbsPosEmb, BoTStack, RelPosEmb


def _build_from_sidecar(fixtures):
    cfg = json.loads((fixtures / "botstack.json").read_text())["constructor_config"]
    stack = BoTStack(
        dim=cfg["dim"],
        fmap_size=cfg["fmap_size"],
        dim_out=cfg["dim_out"],
        heads=cfg["heads"],
        proj_factor=cfg["proj_factor"],
        num_layers=cfg["num_layers"],
        stride=cfg["stride"],
        dim_qk=cfg["dim_qk"],
        dim_v=cfg["dim_v"],
        rel_pos_emb=cfg.get("rel_pos_emb", False),  # the official default
    )
    return stack


@pytest.mark.golden
def test_botstack_matches_official(fixtures):
    tensors = load_file(str(fixtures / "botstack.safetensors"))
    stack = _build_from_sidecar(fixtures)
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    load_strict(stack, state, fixtures / "botstack.safetensors")
    stack.eval()
    outputs = {}
    hooks = [
        stack.net[i].register_forward_hook(lambda m, a, out, i=i: outputs.__setitem__(i, out)) for i in (0, 1)
    ]
    with torch.no_grad():
        y = stack(tensors["input.x"])
    for h in hooks:
        h.remove()
    assert y.shape == tensors["output.y"].shape
    assert (outputs[0] - tensors["output.block0"]).abs().max().item() <= 1e-5
    assert (outputs[1] - tensors["output.block1"]).abs().max().item() <= 1e-5
    assert (y - tensors["output.y"]).abs().max().item() <= 1e-5


def _rel_to_abs_reference(q: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor, h: int, w: int):
    """Brute-force loop over query and key positions: the formula of rqvqa.md §2.2."""
    b, heads, n, _ = q.shape
    out = torch.zeros(b, heads, n, n, dtype=q.dtype)
    for x in range(h):
        for y in range(w):
            for i in range(h):
                for j in range(w):
                    emb = rel_w[j - y + w - 1] + rel_h[i - x + h - 1]
                    out[:, :, x * w + y, i * w + j] = q[:, :, x * w + y] @ emb
    return out


def test_relative_logits_match_brute_force_on_rectangular_map():
    torch.manual_seed(0)
    h, w, d = 3, 5, 4
    emb = RelPosEmb((h, w), d)
    q = torch.randn(2, 3, h * w, d, dtype=torch.float64)
    emb = emb.double()
    expected = _rel_to_abs_reference(q, emb.rel_height.detach(), emb.rel_width.detach(), h, w)
    assert torch.allclose(emb(q), expected, atol=1e-12)


def test_absolute_logits_match_formula():
    torch.manual_seed(0)
    h, w, d = 3, 4, 5
    emb = AbsPosEmb((h, w), d).double()
    q = torch.randn(2, 3, h * w, d, dtype=torch.float64)
    expected = torch.zeros(2, 3, h * w, h * w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            expected[..., i * w + j] = q @ (emb.height[i] + emb.width[j]).detach()
    assert torch.allclose(emb(q), expected, atol=1e-12)


def test_fresh_stack_is_relu_at_init_and_keys_follow_official_names():
    torch.manual_seed(0)
    stack = BoTStack(
        dim=32,
        fmap_size=(4, 4),
        dim_out=32,
        heads=2,
        num_layers=3,
        stride=1,
        dim_qk=8,
        dim_v=8,
        rel_pos_emb=True,
    )
    keys = set(stack.state_dict())
    assert "net.2.net.3.to_qk.weight" in keys and "net.0.net.3.pos_emb.rel_width" in keys
    assert len(keys) == 63  # 21 per block, as in the official stack
    assert stack.state_dict()["net.0.net.3.to_qk.weight"].shape == (2 * 2 * 8, 8, 1, 1)
    x = torch.randn(2, 32, 4, 4)
    stack.eval()
    # zero gamma on the last BN of each block: the residual branch adds only its BN bias (0) -> relu(x)
    assert torch.equal(stack(x), torch.relu(x))


def test_stride_two_and_width_change_build_shortcut_and_pool():
    stack = BoTStack(dim=16, fmap_size=(4, 4), dim_out=32, heads=2, num_layers=2, stride=2, dim_qk=4, dim_v=4)
    # official shortcut: 1x1 conv with the block's stride, BN, activation
    assert stack.state_dict()["net.0.shortcut.0.weight"].shape == (32, 16, 1, 1)
    assert "net.0.net.3.pos_emb.height" in stack.state_dict()  # absolute embeddings by default
    y = stack.eval()(torch.randn(1, 16, 4, 4))
    assert y.shape == (1, 32, 2, 2)
    with pytest.raises(InputError, match="expects"):
        stack(torch.randn(1, 16, 6, 6))

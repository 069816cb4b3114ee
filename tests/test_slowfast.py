"""SlowFast R50 fast pathway: equality with pytorchvideo, checkpoint layout, the chunk source."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rqvqa.errors import InputError, WeightsError
from rqvqa.families.slowfast.network import (
    SlowFastFastPathway,
    fast_pathway_state_dict,
    load_slowfast_fast,
    slowfast_from_state_dict,
)
from rqvqa.families.slowfast.preprocess import CHUNKS
from rqvqa.families.slowfast.source import SlowFastSource
from rqvqa.video.sampling import VideoSample


def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm affine parameters and running statistics (the defaults would make BN an identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    return model.eval()


@pytest.mark.slow
def test_fast_pathway_equals_pytorchvideo_slowfast_r50():
    hub = pytest.importorskip("pytorchvideo.models.hub", reason="pytorchvideo (test extra) not installed")
    torch.manual_seed(0)
    reference = _randomise_norms(hub.slowfast_r50(pretrained=False))
    ours, load = slowfast_from_state_dict(reference.state_dict())
    assert len(load.state_dict) == 318 and not load.filled_counters

    fast = torch.randn(1, 3, 32, 64, 64)
    # pytorchvideo's packing: the slow pathway gets frames linspace(0, 31, 8) truncated, the fast one all 32
    slow = fast[:, :, torch.linspace(0, 31, 8).long()]

    def reference_fast(slow_input: torch.Tensor) -> torch.Tensor:
        x = [slow_input, fast]
        with torch.inference_mode():
            for block in reference.blocks[:5]:
                x = block(x)
        return x[1]

    expected = reference_fast(slow)
    # the claim the lean network rests on: the fast output does not depend on the slow pathway at all
    assert torch.equal(expected, reference_fast(torch.randn_like(slow)))
    with torch.inference_mode():
        got = ours(fast)
        feature = ours.features(fast)
    assert got.shape == expected.shape == (1, 256, 32, 2, 2)
    assert (got - expected).abs().max().item() <= 1e-5
    assert (feature - expected.mean(dim=(2, 3, 4))).abs().max().item() <= 1e-5


@pytest.fixture(scope="module")
def manifest(fixtures) -> dict:
    return json.loads((fixtures / "manifests" / "slowfast_r50_state_dict.json").read_text())


def _manifest_state(manifest: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in manifest["shapes"].items():
        if manifest["dtypes"][key] == "int64":
            state[key] = torch.randint(0, 1000, shape, generator=gen)
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state


def test_manifest_checkpoint_loads_and_every_key_is_accounted_for(manifest, tmp_path):
    state = _manifest_state(manifest)
    assert len(state) == manifest["num_keys"]
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": state, "epoch": 196}, path)
    model, load = load_slowfast_fast(path)
    source = SlowFastSource(weights=path)
    key = source.config_hash()
    assert source.model.state_dict().keys() == model.state_dict().keys()  # lazy load through the source
    assert source.config_hash() == key and source.config()["weights"] == "SLOWFAST_8x8_R50.pyth"
    assert source.load_report is not None and source.load_report.ignored == load.ignored

    used = set(manifest["fast_pathway_keys_used_by_rqvqa"])
    assert len(used) == 318
    assert set(load.ignored) == set(state) - used
    assert not any(".multipathway_blocks.1." in k for k in load.ignored)
    own = model.state_dict()
    assert len(own) == len(used)
    for key in used:
        short = key.replace(".multipathway_blocks.1.", ".", 1)
        assert torch.equal(own[short], state[key]), key


def test_layout_problems_are_reported(manifest):
    state = _manifest_state(manifest)
    model = SlowFastFastPathway()

    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    load = fast_pathway_state_dict(old, model)
    assert len(load.filled_counters) == sum(k.endswith("num_batches_tracked") for k in model.state_dict())

    with pytest.raises(WeightsError, match="unknown keys: module.blocks"):
        fast_pathway_state_dict({"module." + k: v for k, v in state.items()}, model, "x.pyth")

    incomplete = dict(state)
    del incomplete["blocks.4.multipathway_blocks.1.res_blocks.2.branch2.conv_b.weight"]
    with pytest.raises(WeightsError, match="1 missing keys: blocks.4.res_blocks.2.branch2.conv_b.weight"):
        slowfast_from_state_dict(incomplete, "x.pyth")


def _sample(chunks: np.ndarray | None) -> VideoSample:
    return VideoSample(info=None, keyframe_indices=[], chunks=chunks)  # type: ignore[arg-type]


def test_source_batches_chunks_without_changing_rows():
    torch.manual_seed(2)
    model = _randomise_norms(SlowFastFastPathway())
    chunks = np.random.default_rng(0).integers(0, 256, size=(3, 8, 64, 64, 3), dtype=np.uint8)
    batched = SlowFastSource(model=model, chunks_per_batch=2).extract(_sample(chunks))
    single = SlowFastSource(model=model, chunks_per_batch=1).extract(_sample(chunks))
    assert batched.shape == (3, 256) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5)
    with torch.inference_mode():
        row1 = model.features(CHUNKS(chunks[1:2]))
    np.testing.assert_allclose(batched[1], row1[0].numpy(), atol=1e-5)
    assert np.abs(batched[0] - batched[1]).max() > 1e-4

    with pytest.raises(InputError, match="no chunks"):
        SlowFastSource(model=model).extract(_sample(None))


def test_source_is_registered():
    from rqvqa.registry import REGISTRY

    cls = REGISTRY.source_class("slowfast")
    assert cls is SlowFastSource and cls.granularity == "chunk" and cls.dim == 256


def test_source_on_a_generated_video(small_video):
    from rqvqa.video.sampling import sample_video

    torch.manual_seed(3)
    model = _randomise_norms(SlowFastFastPathway(stem_width=2, depths=(1, 1, 1, 1)))
    sample = sample_video(small_video, chunks=True)
    features = SlowFastSource(model=model, chunks_per_batch=3).extract(sample)
    assert features.shape == (len(sample.chunks), model.out_dim) and model.out_dim == 64
    np.testing.assert_array_equal(
        features, SlowFastSource(model=model).extract(sample_video(small_video, chunks=True))
    )
    # a 2.5-s clip has 2 chunks at 30 fps: they differ (the generated content moves)
    assert np.abs(features[0] - features[1]).max() > 1e-5

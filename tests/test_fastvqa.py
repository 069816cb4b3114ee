"""FAST-VQA: Video Swin with the gated fragment position bias, checkpoint layout, feature source."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from network_helpers import randomise

from rqvqa.errors import WeightsError
from rqvqa.families.fastvqa.network import (
    FASTVQA_B_SCORE_MEAN,
    FASTVQA_B_SCORE_STD,
    FastVQA,
    VideoSwin3D,
    VideoSwinConfig,
    fragment_gate,
    load_fastvqa,
    relative_position_index,
)
from rqvqa.families.fastvqa.predictor import FastVQAPredictor, rescale_score
from rqvqa.families.fastvqa.preprocess import FRAGMENTS
from rqvqa.families.fastvqa.source import FastVQASource
from rqvqa.video.sampling import VideoSample

TINY = VideoSwinConfig(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


@pytest.fixture(scope="module")
def golden(fixtures):
    from safetensors.torch import load_file

    meta = json.loads((fixtures / "fastvqa_swin3d.json").read_text())
    return meta, load_file(str(fixtures / "fastvqa_swin3d.safetensors"))


@pytest.mark.golden
def test_relative_position_index_matches_official(golden):
    meta, tensors = golden
    window = tuple(meta["constructor_config"]["window_size"])
    expected = tensors["const.relative_position_index"].long()
    assert torch.equal(relative_position_index(window), expected)


@pytest.mark.golden
@pytest.mark.slow
def test_backbone_matches_official_fixture(golden):
    meta, tensors = golden
    model = VideoSwin3D(VideoSwinConfig.from_dict(meta["constructor_config"])).eval()
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # the fixture leaves out only the derived index buffers
    assert not unexpected
    assert missing and all(k.endswith("attn.relative_position_index") for k in missing)

    norm = meta["input_normalisation"]
    assert tuple(norm["mean"]) == FRAGMENTS.mean and tuple(norm["std"]) == FRAGMENTS.std
    u8 = tensors["input.fragments_uint8"]  # (N, 3, T, H, W)
    x = FRAGMENTS(u8.permute(0, 2, 3, 4, 1).numpy())
    torch.set_num_threads(1)
    with torch.inference_mode():
        stages = model.forward_stages(x)
    names = ["patch_embed_mean"] + [f"layer{i}_mean" for i in range(len(model.layers))]
    for name, out in zip(names, stages, strict=False):
        diff = (out.mean(dim=(2, 3, 4)) - tensors[f"output.{name}"]).abs().max().item()
        assert diff <= 1e-4, f"{name}: max abs diff {diff}"
    feat = stages[-1]
    assert feat.shape == tensors["output.feat"].shape
    assert (feat - tensors["output.feat"]).abs().max().item() <= 1e-4
    assert (feat.mean(dim=(2, 3, 4)) - tensors["output.feat_mean"]).abs().max().item() <= 1e-4


def test_fragment_gate_is_an_unclamped_distance():
    # FAST-VQA-B stage 0: 16 x 56 x 56 tokens, window (8, 7, 7): 8 x 8-token fragments
    plain = fragment_gate((16, 56, 56), (8, 7, 7), (0, 0, 0), torch.device("cpu"))
    assert plain.shape == (2 * 8 * 8, 392, 392) and not plain.is_floating_point()
    share = torch.bincount(plain.flatten()).double() / plain.numel()
    assert share.numel() == 3  # values 0, 1, 2 only
    assert share[0] == pytest.approx(0.51, abs=0.01) and share[1] == pytest.approx(0.41, abs=0.01)
    shifted = fragment_gate((16, 56, 56), (8, 7, 7), (4, 3, 3), torch.device("cpu"))
    # the roll wraps the last fragments next to the first ones: distances up to 12
    assert {6, 7, 12} <= set(shifted.unique().tolist())
    assert int(fragment_gate((16, 14, 14), (8, 7, 7), (0, 0, 0), torch.device("cpu")).max()) == 6


def _map_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """FAST-VQA backbone names -> torchvision SwinTransformer3d names (reference fastvqa.md section 6)."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if "fragment_position_bias_table" in key:
            continue
        if parts[0] == "layers":
            stage = int(parts[1])
            if parts[2] == "blocks":
                rest = ".".join(parts[4:]).replace("mlp.fc1", "mlp.0").replace("mlp.fc2", "mlp.3")
                key = f"features.{2 * stage}.{parts[3]}.{rest}"
            else:  # downsample
                key = f"features.{2 * stage + 1}." + ".".join(parts[3:])
        out[key] = value
    return out


@pytest.mark.slow
def test_neutral_gate_equals_torchvision_swin3d():
    """With the fragment tables equal to the ordinary tables the GRPB is neutral and the network must equal
    torchvision's Video Swin (an independent implementation), here with padding, window shrinking and odd
    patch merging exercised by a small input on the non-adaptive path."""
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    torch.manual_seed(0)
    ours = randomise(VideoSwin3D(TINY))
    with torch.no_grad():
        for layer in ours.layers:
            for block in layer.blocks:
                if block.attn.fragment_position_bias_table is not None:
                    block.attn.fragment_position_bias_table.copy_(block.attn.relative_position_bias_table)
    theirs = SwinTransformer3d(
        patch_size=list(TINY.patch_size),
        embed_dim=TINY.embed_dim,
        depths=list(TINY.depths),
        num_heads=list(TINY.num_heads),
        window_size=list(TINY.window_size),
        stochastic_depth_prob=0.0,
    ).eval()
    mapped = _map_to_torchvision(ours.state_dict())
    missing, unexpected = theirs.load_state_dict(mapped, strict=False)
    assert not unexpected and set(missing) == {"head.weight", "head.bias"}

    x = torch.randn(1, 3, 16, 64, 80)
    with torch.inference_mode():
        a = ours(x, adaptive_window=False)
        b = theirs.norm(theirs.features(theirs.patch_embed(x))).permute(0, 4, 1, 2, 3)
    assert a.shape == b.shape
    assert (a - b).abs().max().item() < 1e-4
    # and the real gate does change the output
    with torch.no_grad():
        ours.layers[0].blocks[0].attn.fragment_position_bias_table.add_(1.0)
        assert (ours(x, adaptive_window=False) - a).abs().max().item() > 1e-3


def test_adaptive_window_is_identity_at_base_size():
    config = VideoSwinConfig(**{**TINY.__dict__, "base_x_size": (16, 112, 112)})
    model = randomise(VideoSwin3D(config))
    x = torch.randn(1, 3, 16, 112, 112)
    with torch.inference_mode():
        first = model.layers[0](model.patch_embed(x), (8, 7, 7))
        second = model.layers[0](model.patch_embed(x), None)
    assert torch.equal(first, second)


def _manifest_state_dict(fixtures, seed: int = 0) -> dict[str, torch.Tensor]:
    manifest = json.loads((fixtures / "manifests" / "fastvqa_b_state_dict.json").read_text())
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in manifest["shapes"].items():
        if manifest["dtypes"][key] == "int64":
            # the index buffers are deterministic; random values would (rightly) be rejected
            state[key] = relative_position_index((8, 7, 7))
        else:
            state[key] = torch.randn(shape, generator=gen)
    assert len(state) == manifest["num_keys"] == 197
    return state


def test_loads_every_key_of_the_official_checkpoint(fixtures, tmp_path):
    state = _manifest_state_dict(fixtures)
    path = tmp_path / "FAST_VQA_B_1_4.pth"
    # FAST-VQA's new_train.py stores numpy validation figures next to the weights
    results = {"SROCC": np.float64(0.87), "PLCC": np.float32(0.88), "all": np.array([0.1, 0.2])}
    torch.save({"state_dict": state, "validation_results": results}, path)
    model = load_fastvqa(path)
    loaded = model.state_dict()
    source = FastVQASource(weights=path)
    key = source.config_hash()
    assert source.model.state_dict().keys() == loaded.keys()  # lazy load through the source
    assert source.config_hash() == key and source.config()["weights"] == "FAST_VQA_B_1_4.pth"
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_checkpoint_problems_are_reported(fixtures, tmp_path):
    state = _manifest_state_dict(fixtures)
    bad_index = dict(state)
    key = "fragments_backbone.layers.1.blocks.0.attn.relative_position_index"
    bad_index[key] = bad_index[key].flip(0)
    torch.save({"state_dict": bad_index}, tmp_path / "bad_index.pth")
    with pytest.raises(WeightsError, match="relative_position_index differs"):
        load_fastvqa(tmp_path / "bad_index.pth")

    no_table = dict(state)
    del no_table["fragments_backbone.layers.0.blocks.1.attn.fragment_position_bias_table"]
    torch.save({"state_dict": no_table}, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="1 missing keys: .*fragment_position_bias_table"):
        load_fastvqa(tmp_path / "missing.pth")


def _sample(fragments: np.ndarray) -> VideoSample:
    return VideoSample(info=None, keyframe_indices=[], fragments=fragments)  # type: ignore[arg-type]


def test_source_feature_is_the_clip_and_position_mean():
    torch.manual_seed(1)
    model = randomise(FastVQA(TINY))
    rng = np.random.default_rng(3)
    fragments = rng.integers(0, 256, size=(4, 16, 64, 64, 3), dtype=np.uint8)
    source = FastVQASource(model=model, clips_per_batch=3)
    feature = source.extract(_sample(fragments))
    assert feature.shape == (TINY.num_features,) and feature.dtype == np.float32

    with torch.inference_mode():
        maps = model.fragments_backbone(FRAGMENTS(fragments))
    assert maps.shape[:2] == (4, TINY.num_features)
    np.testing.assert_allclose(feature, maps.mean(dim=(0, 2, 3, 4)).numpy(), atol=1e-6)
    # the clips differ, so the average is not any single clip's vector
    assert (maps[0] - maps[1]).abs().max() > 1e-3
    np.testing.assert_array_equal(feature, source.extract(_sample(fragments)))

    clip_scores = source.clip_scores(source.feature_maps(_sample(fragments)))
    with torch.inference_mode():
        quality_map = model.vqa_head(maps)
    assert quality_map.shape == (4, 1, *maps.shape[2:])
    assert np.mean(clip_scores) == pytest.approx(quality_map.mean().item(), abs=1e-6)
    # the head is non-linear: scoring the averaged feature would give another number
    assert abs(np.mean(clip_scores) - model.vqa_head(maps.mean(0, keepdim=True)).mean().item()) > 1e-6


def test_rescaled_score_follows_vqa_py():
    assert rescale_score(FASTVQA_B_SCORE_MEAN) == pytest.approx(0.5)
    assert rescale_score(FASTVQA_B_SCORE_MEAN + FASTVQA_B_SCORE_STD) == pytest.approx(1 / (1 + np.exp(-1)))


def test_source_is_registered():
    from rqvqa.registry import REGISTRY

    cls = REGISTRY.source_class("fastvqa")
    assert cls is FastVQASource and cls.dim == 768 and cls.needs == frozenset({"fragments"})


@pytest.mark.slow
def test_same_video_and_seed_give_the_same_feature(small_video):
    from rqvqa.video.sampling import sample_video

    config = VideoSwinConfig(embed_dim=8, depths=(2, 1, 1, 1), num_heads=(1, 1, 1, 1))
    source = FastVQASource(model=randomise(FastVQA(config), seed=4), clips_per_batch=2)
    first = sample_video(small_video, fragments=True, seed=11)
    again = sample_video(small_video, fragments=True, seed=11)
    other = sample_video(small_video, fragments=True, seed=12)
    assert first.fragments.shape == (4, 32, 224, 224, 3)
    feature = source.extract(first)
    np.testing.assert_array_equal(feature, source.extract(again))
    # another seed moves the fragment offsets (320x240 leaves room inside every grid cell)
    assert not np.array_equal(first.fragments, other.fragments)

    predictor = FastVQAPredictor(seed=11, model=source.model)
    prediction = predictor.predict(small_video)
    assert prediction.score == pytest.approx(rescale_score(prediction.extra["raw"]))
    assert len(prediction.extra["clip_raw"]) == 4 and predictor.card.options["seed"] == 11


def test_predictor_is_in_the_zoo():
    from rqvqa.registry import REGISTRY

    assert REGISTRY.model_class("fastvqa") is FastVQAPredictor

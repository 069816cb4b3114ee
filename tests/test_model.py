"""RQ-VQA fusion head (golden), presets and the end-to-end model on a tiny base network."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rqvqa.checkpoints import load_strict
from rqvqa.errors import ConfigError, InputError
from rqvqa.families.rqvqa.head import FusionHead, SourceSpec
from rqvqa.families.rqvqa.model import (
    RQVQA,
    BaseNetConfig,
    ModelConfig,
    config_from_options,
    parse_sources,
    preset,
)

# fixture input name -> our slot name, in the official concatenation order
FIXTURE_INPUTS = {
    "swin_bot_pooled": "base",
    "slowfast_fast": "slowfast",
    "qalign": "qalign",
    "liqe": "liqe",
    "fastvqa": "fastvqa",
}


@pytest.mark.golden
def test_fusion_head_matches_official(fixtures):
    meta = json.loads((fixtures / "rqvqa_head.json").read_text())
    tensors = load_file(str(fixtures / "rqvqa_head.safetensors"))
    inputs = {ours: tensors[f"input.{theirs}"] for theirs, ours in FIXTURE_INPUTS.items()}
    slots = [SourceSpec(name, x.shape[-1]) for name, x in inputs.items()]
    head = FusionHead(slots, hidden=tensors["model.quality.0.weight"].shape[0])
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    load_strict(head, state)
    batch, frames = meta["batch"], meta["frames"]
    with torch.no_grad():
        fused = head.fuse(inputs)
        frame_scores, score = head(inputs)
        # a per-video FAST-VQA vector given once must be broadcast exactly like the official loader
        per_video = dict(inputs, fastvqa=inputs["fastvqa"][:, 0])
        frame_scores_pv, _ = head(per_video)
    assert (fused.reshape(batch * frames, -1) - tensors["output.concat_features"]).abs().max() <= 1e-5
    assert (frame_scores - tensors["output.frame_scores"]).abs().max() <= 1e-5
    assert (score - tensors["output.score"]).abs().max() <= 1e-5
    assert torch.equal(frame_scores_pv, frame_scores)


def test_presets_have_the_papers_dimensions():
    # the fused dimension with the 1024-d Swin-B slot
    expected = {"rqvqa": 6639, "base": 1280, "no-qalign": 2543, "no-liqe": 6144, "no-fastvqa": 5871}
    for name, total in expected.items():
        cfg = preset(name)
        assert 1024 + sum(s.dim for s in cfg.sources) == total, name
    assert preset("rqvqa").source_names == ["slowfast", "qalign", "liqe", "fastvqa"]
    assert preset("base").base.pooling == "avg" and preset("rqvqa").base.pooling == "bot"


def test_source_parsing_and_errors():
    assert parse_sources(["slowfast", "videval:60"]) == (
        SourceSpec("slowfast", 256),
        SourceSpec("videval", 60),
    )
    with pytest.raises(ConfigError, match="base"):
        parse_sources(["base:3"])
    with pytest.raises(ConfigError, match="twice"):
        parse_sources(["liqe", "liqe"])
    with pytest.raises(ConfigError, match="nosuchsource"):
        parse_sources(["nosuchsource"])
    with pytest.raises(ConfigError, match="preset"):
        preset("nope")


def test_config_round_trip_and_cli_options():
    cfg = config_from_options("no-liqe", arch="swin_tiny_test", img_size=96)
    assert cfg.base.arch == "swin_tiny_test" and cfg.base.img_size == 96 and cfg.base.pooling == "bot"
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    head_only = config_from_options(sources=["videval:60", "brisque:36"], base="none")
    assert head_only.base is None and not head_only.needs_frames
    with pytest.raises(ConfigError):
        config_from_options("rqvqa", sources=["liqe"])
    with pytest.raises(ConfigError):
        config_from_options(sources=[], base="none")  # nothing to regress from


def test_base_network_alone_is_a_model():
    torch.manual_seed(0)
    cfg = config_from_options(base="avg", arch="swin_tiny_test")
    assert cfg.source_names == [] and cfg.base.pooling == "avg"
    model = RQVQA(cfg).eval()
    frames = torch.randn(2, 3, 3, cfg.base.img_size, cfg.base.img_size)
    frame_scores, score = model(frames, {})
    assert frame_scores.shape == (2, 3) and torch.allclose(score, frame_scores.mean(dim=1))


def test_head_only_model_on_precomputed_features():
    torch.manual_seed(0)
    model = RQVQA(ModelConfig(sources=parse_sources(["videval:60"]), base=None))
    assert model.in_dim == 60 and model.base is None
    x = torch.randn(3, 60)
    frame_scores, score = model(None, {"videval": x})
    assert frame_scores.shape == (3, 1)
    assert torch.allclose(score, model.head.quality(x).squeeze(-1))
    with pytest.raises(InputError, match="videval"):
        model(None, {"other": x})
    half_scores, _ = model(None, {"videval": x.half()})
    assert half_scores.dtype == torch.float32
    assert torch.allclose(half_scores, model(None, {"videval": x.half().float()})[0])


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return RQVQA(preset("no-qalign", base=BaseNetConfig.tiny())).eval()


def test_tiny_model_end_to_end_matches_manual_computation(tiny_model):
    model = tiny_model
    b, f, size = 2, 3, model.config.base.img_size
    frames = torch.randn(b, f, 3, size, size)
    feats = {
        "slowfast": torch.randn(b, f, 256),
        "liqe": torch.randn(b, f, 495),
        "fastvqa": torch.randn(b, 768),
    }
    with torch.no_grad():
        frame_scores, score = model(frames, feats)
        # by hand: Swin tokens -> BoT -> spatial mean, per frame, then the regressor
        swin = model.base.swin
        rows = []
        for i in range(b):
            for j in range(f):
                tokens = swin.forward_features(frames[i, j : j + 1])  # (1, h, w, C)
                pooled = model.base.bot(tokens.permute(0, 3, 1, 2)).mean(dim=(2, 3))[0]
                rows.append(
                    torch.cat([pooled, feats["slowfast"][i, j], feats["liqe"][i, j], feats["fastvqa"][i]])
                )
        expected = model.head.quality(torch.stack(rows)).view(b, f)
    assert frame_scores.shape == (b, f) and score.shape == (b,)
    assert torch.allclose(frame_scores, expected, atol=1e-5)
    assert torch.allclose(score, expected.mean(dim=1), atol=1e-6)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    _, masked = model(frames, feats, frame_mask=mask)
    assert torch.allclose(masked, torch.stack([expected[0, :2].mean(), expected[1, 0]]), atol=1e-5)


def test_model_rejects_bad_inputs(tiny_model):
    size = tiny_model.config.base.img_size
    feats = {
        "slowfast": torch.randn(1, 2, 256),
        "liqe": torch.randn(1, 3, 495),
        "fastvqa": torch.randn(1, 768),
    }
    with pytest.raises(InputError, match="frames"):
        tiny_model(None, feats)
    with pytest.raises(InputError, match="number of frames"):
        tiny_model(torch.randn(1, 2, 3, size, size), feats)
    with pytest.raises(InputError, match=f"{size}, {size}"):
        tiny_model(torch.randn(1, 2, 3, size + 4, size), {**feats, "liqe": torch.randn(1, 2, 495)})
    feats["liqe"] = torch.randn(1, 2, 494)
    with pytest.raises(InputError, match="liqe"):
        tiny_model(torch.randn(1, 2, 3, size, size), feats)


def test_tiny_model_trains(tiny_model):
    """Gradients reach every trainable part: Swin, BoT (its zero-gamma BN included) and the regressor."""
    torch.manual_seed(1)
    model = RQVQA(preset("base", base=BaseNetConfig.tiny())).train()
    size = model.config.base.img_size
    frames = torch.randn(4, 2, 3, size, size)
    feats = {"slowfast": torch.randn(4, 2, 256)}
    _, score = model(frames, feats)
    score.sum().backward()
    assert model.base.bot is None
    assert model.base.swin.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.head.quality[0].weight.grad.abs().sum() > 0
    bot_model = RQVQA(preset("rqvqa", base=BaseNetConfig.tiny())).train()
    feats = {
        "slowfast": torch.randn(2, 2, 256),
        "qalign": torch.randn(2, 2, 4096),
        "liqe": torch.randn(2, 2, 495),
        "fastvqa": torch.randn(2, 768),
    }
    _, score = bot_model(torch.randn(2, 2, 3, size, size), feats)
    score.sum().backward()
    assert bot_model.base.bot.net[2].net[8].weight.grad.abs().sum() > 0


def test_safetensors_export_round_trip(tmp_path, tiny_model):
    from rqvqa.families.rqvqa.remap import load_weights, read_model_config, save_model

    path = save_model(tiny_model, tmp_path / "tiny.safetensors")
    config = ModelConfig.from_dict(read_model_config(path))
    assert config == tiny_model.config
    torch.manual_seed(5)
    fresh = RQVQA(config)
    assert not torch.equal(fresh.head.quality[0].weight, tiny_model.head.quality[0].weight)
    load_weights(fresh, path)
    reference = tiny_model.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in fresh.state_dict().items())


# timm's table interpolation indexes with a list internally (a torch deprecation warning, not ours)
@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")
def test_lsvq_backbone_into_another_resolution_resizes_position_tables():
    """Table 7: a 384-trained backbone initialises a model at another input size (tiny stand-in: 64 -> 32 px,
    where the last stage's window shrinks from 2 to 1)."""
    from rqvqa.errors import WeightsError
    from rqvqa.families.rqvqa.remap import load_lsvq_backbone, official_key

    torch.manual_seed(2)
    source = RQVQA(preset("base", base=BaseNetConfig.tiny(img_size=64)))
    official = {official_key(k, "lsvq-base"): v for k, v in source.state_dict().items()}
    target = RQVQA(preset("rqvqa", base=BaseNetConfig.tiny(img_size=32)))
    key = "layers.3.blocks.0.attn.relative_position_bias_table"
    assert target.base.swin.state_dict()[key].shape != source.base.swin.state_dict()[key].shape
    with pytest.raises(
        WeightsError, match="shape mismatches: layers.3.blocks.0.attn.relative_position_bias_table"
    ):
        load_lsvq_backbone(target, official, resize_position_tables=False)
    load_lsvq_backbone(target, official)
    src, dst = source.base.swin.state_dict(), target.base.swin.state_dict()
    assert torch.equal(
        dst["layers.1.downsample.reduction.weight"], src["layers.1.downsample.reduction.weight"]
    )
    assert torch.equal(
        dst["layers.2.blocks.0.attn.relative_position_bias_table"], src[key.replace("3", "2", 1)]
    )
    assert dst[key].shape == (1, 1) and torch.isfinite(dst[key]).all()


def test_imagenet_weights_in_microsoft_layout_initialise_the_backbone(tmp_path):
    """Swin release files hold {"model": old-layout state dict + classifier}; the classifier is dropped."""
    from rqvqa.families.rqvqa.remap import official_key
    from rqvqa.families.rqvqa.swin_bot import SwinBot, load_imagenet_weights

    torch.manual_seed(3)
    source = SwinBot(BaseNetConfig.tiny(pooling="avg")).swin
    old_layout = {
        official_key("base.swin." + k, "lsvq-base").removeprefix("feature_extraction."): v
        for k, v in source.state_dict().items()
    }
    assert "layers.0.downsample.reduction.weight" in old_layout
    old_layout["head.weight"] = torch.randn(21841, source.num_features)
    old_layout["head.bias"] = torch.randn(21841)
    old_layout["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(4, 4, dtype=torch.int64)
    path = tmp_path / "swin_tiny_22k.pth"
    torch.save({"model": old_layout}, path)
    target = SwinBot(BaseNetConfig.tiny(pooling="avg")).swin
    load_imagenet_weights(target, path)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())

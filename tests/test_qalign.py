"""Q-Align / mPLUG-Owl2: golden forward, key manifest, sharded lazy loading, prompt ids, geometry, features
and scores, all on tiny random configurations (no weights can be downloaded here)."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from network_helpers import random_owl2, train_tokenizer
from PIL import Image

from rqvqa.checkpoints import load_strict, save_safetensors, strip_prefix
from rqvqa.errors import ConfigError, InputError, WeightsError
from rqvqa.families.qalign.checkpoint import checkpoint_files, load_owl2
from rqvqa.families.qalign.config import IMAGE_TOKEN_INDEX, TINY_CONFIG, Owl2Config
from rqvqa.families.qalign.network import MplugOwl2
from rqvqa.families.qalign.source import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGE_PROMPT,
    LEVELS,
    PAD_COLOUR,
    QAlign,
    QAlignSource,
    SentencePieceTokenizer,
    pad_to_square,
    prompt_ids,
    resize_padded_square,
    split_halves,
    to_pixels,
)
from rqvqa.video.reader import VideoInfo
from rqvqa.video.sampling import VideoSample

TINY = TINY_CONFIG


def _random_model(seed: int = 0, cfg: Owl2Config = TINY) -> MplugOwl2:
    return random_owl2(seed, cfg)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> SentencePieceTokenizer:
    return train_tokenizer(tmp_path_factory.mktemp("spm"))


# ------------------------------------------------------------------------------------------------ golden


@pytest.mark.golden
def test_golden_tiny_forward(fixtures):
    from safetensors.torch import load_file

    meta = json.loads((fixtures / "qalign_tiny.json").read_text())
    tensors = load_file(str(fixtures / "qalign_tiny.safetensors"))
    cfg = Owl2Config.from_dict(meta["constructor_config"])
    model = MplugOwl2(cfg).eval()
    fresh_buffers = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("_pos_embed")}
    weights = strip_prefix({k: v for k, v in tensors.items() if k.startswith("model.")}, "model.")
    load_strict(model, weights, fixtures / "qalign_tiny.safetensors")
    # Our sin-cos tables equal the official persistent buffers.
    for key, value in fresh_buffers.items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=1e-6)

    with torch.no_grad():
        out = model(tensors["input.input_ids"], tensors["input.images"])
        logits = model.lm_head(out.last_hidden_state)
    hidden = out.last_hidden_state
    assert hidden.shape[1] == meta["sequence_length_after_splice"]
    checks = {
        "output.last_hidden_state": hidden,
        "output.last_hidden_state_mean": hidden.mean(dim=1),
        "output.rqvqa_feature": hidden.mean(dim=0).mean(dim=0, keepdim=True),
        "output.logits": logits,
        "output.visual_tokens": out.visual_tokens,
    }
    for key, ours in checks.items():
        assert list(ours.shape) == meta["tensors"][key]["shape"], key
        torch.testing.assert_close(ours, tensors[key], rtol=0, atol=1e-5, msg=key)
    assert torch.equal(out.modality_indicators, tensors["output.modality_indicators"])


@pytest.mark.golden
def test_full_size_layout_matches_manifest(fixtures):
    manifest = json.loads((fixtures / "manifests" / "one_align_mplug_owl2_state_dict.json").read_text())
    cfg = Owl2Config.from_dict(manifest["config"])
    with torch.device("meta"):
        model = MplugOwl2(cfg)
    state = model.state_dict()
    assert list(state) == list(manifest["shapes"])
    assert len(state) == manifest["num_keys"]
    assert {k: list(v.shape) for k, v in state.items()} == manifest["shapes"]
    assert sum(v.numel() for v in state.values()) == manifest["num_elements"]
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == set(manifest["persistent_buffers"])


# ------------------------------------------------------------------------------------------------ loading


def _write_shards(folder, state: dict[str, torch.Tensor], fmt: str) -> None:
    keys = list(state)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    ext = "safetensors" if fmt == "safetensors" else "bin"
    prefix = "model" if fmt == "safetensors" else "pytorch_model"
    weight_map = {}
    for i, part in enumerate(halves, start=1):
        name = f"{prefix}-{i:05d}-of-00002.{ext}"
        shard = {k: state[k].to(torch.bfloat16) for k in part}
        if fmt == "safetensors":
            save_safetensors(shard, folder / name)
        else:
            torch.save(shard, folder / name)
        weight_map.update(dict.fromkeys(part, name))
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _hf_config(cfg: Owl2Config) -> dict:
    """config.json in the HF layout (LLM keys at top level, visual_config nested)."""
    return {
        **cfg.llm.__dict__,
        "rope_scaling": None,
        "model_type": "mplug_owl2",
        "visual_config": {"visual_model": cfg.vision.__dict__, "visual_abstractor": cfg.abstractor.__dict__},
    }


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_sharded_lazy_loading(tmp_path, fmt):
    source = _random_model(seed=3)
    state = source.state_dict()
    # Shards written by old transformers hold rotary inv_freq and may lack the sin-cos buffers.
    state = {k: v for k, v in state.items() if not k.endswith("k_pos_embed")}
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    _write_shards(tmp_path, state, fmt)
    (tmp_path / "config.json").write_text(json.dumps(_hf_config(TINY)))
    assert len(checkpoint_files(tmp_path)) == 2

    model = load_owl2(tmp_path, device="cpu", dtype=torch.float32)
    assert model.cfg == TINY
    loaded = model.state_dict()
    assert not any(t.is_meta for t in loaded.values())
    for key, value in source.state_dict().items():
        expected = value if key.endswith("k_pos_embed") else value.to(torch.bfloat16).float()
        assert torch.equal(loaded[key], expected), key
    assert all(not p.requires_grad for p in model.parameters())


def test_source_loads_one_align_folder_through_weights_registry(tmp_path, tokenizer):
    """Hub-named shards (no index file), config.json and tokenizer.model, found via weights_dir."""
    import shutil

    source_model = _random_model(seed=11)
    state = source_model.state_dict()
    _write_shards(tmp_path, state, "bin")
    (tmp_path / "pytorch_model.bin.index.json").unlink()  # the registry does not list the index
    (tmp_path / "config.json").write_text(json.dumps(_hf_config(TINY)))
    shutil.copy(tokenizer.model_file, tmp_path / "tokenizer.model")

    source = QAlignSource(weights_dir=tmp_path, device="cpu", batch_size=4)
    frames = _frames()[:2]
    info = VideoInfo("x.mp4", Fraction(30), 60, 2.0, 64, 36, 0, "yuv420p", 8, "h264")
    features = source.extract(VideoSample(info=info, keyframe_indices=[0, 30], keyframes=frames))
    bf16_model = _random_model(seed=11)
    bf16_model.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in state.items()})
    expected = QAlign(bf16_model, tokenizer).frame_features(frames)
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-5)


def test_loader_rejects_mismatched_checkpoints(tmp_path):
    state = _random_model().state_dict()
    cases = {
        "missing": {k: v for k, v in state.items() if k != "lm_head.weight"},
        "unexpected": {**state, "model.extra.weight": torch.zeros(2)},
        "shape": {**state, "model.norm.weight": torch.zeros(3)},
    }
    for name, bad in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        save_safetensors(bad, folder / "model.safetensors")
        with pytest.raises(WeightsError):
            load_owl2(folder, device="cpu", config=TINY)
    with pytest.raises(WeightsError):
        load_owl2(tmp_path / "absent", device="cpu", config=TINY)


def test_config_defaults_are_one_align(tmp_path):
    cfg = Owl2Config.from_checkpoint_dir(tmp_path)
    assert cfg == Owl2Config()
    assert (cfg.llm.hidden_size, cfg.vision.image_size, cfg.num_visual_tokens) == (4096, 448, 65)
    for bad in (
        {"rope_scaling": {"type": "linear", "factor": 2.0}},
        {"hidden_act": "gelu"},
        {"llm": {"num_attention_heads": 5, "num_key_value_heads": 2}},
    ):
        with pytest.raises(ConfigError):
            Owl2Config.from_dict(bad)
    with pytest.raises(ConfigError):
        Owl2Config.from_dict({"visual_abstractor": {"grid_size": 16}})


# ------------------------------------------------------------------------------------------------ prompt


def test_prompt_ids_bos_first(tokenizer):
    ids = prompt_ids(tokenizer)
    assert ids[0] == tokenizer.bos_id == 1
    assert ids.count(IMAGE_TOKEN_INDEX) == 1
    cut = ids.index(IMAGE_TOKEN_INDEX)
    assert ids[1:cut] == tokenizer.encode(IMAGE_PROMPT[0])
    assert ids[cut + 1 :] == tokenizer.encode(IMAGE_PROMPT[1])
    assert tokenizer.bos_id not in ids[1:]
    # "\n" survives (byte fallback / identity normalisation), as in the LLaMA tokenizer
    assert tokenizer.encode("\n") != tokenizer.encode(" ")


def test_splice_positions_and_indicators(tokenizer):
    model = _random_model()
    ids = torch.tensor([prompt_ids(tokenizer)] * 2)
    cut = int((ids[0] == IMAGE_TOKEN_INDEX).nonzero())
    n_vis = TINY.num_visual_tokens
    with torch.no_grad():
        out = model(ids, torch.randn(2, 3, 56, 56))
        embeds, _ = model.splice(ids, out.visual_tokens)
    assert out.last_hidden_state.shape == (2, ids.shape[1] - 1 + n_vis, 64)
    expected = torch.zeros(ids.shape[1] - 1 + n_vis, dtype=torch.long)
    expected[cut : cut + n_vis] = 1
    assert torch.equal(out.modality_indicators, expected.expand(2, -1))
    torch.testing.assert_close(embeds[1, cut : cut + n_vis], out.visual_tokens[1])
    torch.testing.assert_close(embeds[0, :cut], model.model.embed_tokens(ids[0, :cut]))
    # several images in one slot (video scoring): concatenated in order
    with torch.no_grad():
        video = model(ids[:1], torch.randn(3, 3, 56, 56), images_per_slot=[3])
    assert video.last_hidden_state.shape[1] == ids.shape[1] - 1 + 3 * n_vis
    with pytest.raises(InputError):
        model(ids, torch.randn(3, 3, 56, 56))


# ------------------------------------------------------------------------------------------------ geometry


def test_halves_and_square_padding():
    frame = np.random.default_rng(0).integers(0, 256, (7, 10, 3), dtype=np.uint8)
    top, bottom = split_halves(frame)
    assert top.shape == (3, 10, 3) and bottom.shape == (4, 10, 3)
    assert np.array_equal(np.concatenate([top, bottom]), frame)

    square = pad_to_square(top)
    assert square.shape == (10, 10, 3)
    assert PAD_COLOUR == (122, 116, 104)
    assert np.array_equal(square[3:6], top)  # offset (10 - 3) // 2 = 3
    assert (square[:3] == PAD_COLOUR).all() and (square[6:] == PAD_COLOUR).all()
    tall = pad_to_square(frame[:, :4])
    assert np.array_equal(tall[:, 1:5], frame[:, :4])  # offset (7 - 4) // 2 = 1
    assert (tall[:, 0] == PAD_COLOUR).all() and (tall[:, 5:] == PAD_COLOUR).all()


@pytest.mark.parametrize(
    "shape", [(540, 1920), (37, 50), (11, 56), (56, 30), (13, 13), (100, 301), (1000, 20), (600, 599)]
)
@pytest.mark.parametrize("size", [56, 448])
def test_fast_padded_resize_is_bit_exact(shape, size):
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    direct = np.asarray(Image.fromarray(pad_to_square(image)).resize((size, size), Image.Resampling.BICUBIC))
    assert np.array_equal(resize_padded_square(image, size), direct)


def test_to_pixels_matches_pil_bicubic_and_clip_normalisation():
    image = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    pixels = to_pixels(image, 56)
    assert pixels.shape == (3, 56, 56) and pixels.dtype == torch.float32
    square = Image.fromarray(pad_to_square(image)).resize((56, 56), Image.Resampling.BICUBIC)
    expected = (np.asarray(square, dtype=np.float64) / 255 - CLIP_MEAN) / CLIP_STD
    np.testing.assert_allclose(pixels.numpy().transpose(1, 2, 0), expected, atol=1e-5)
    # the padding band is exactly the normalised CLIP mean colour (upstream's truncation to 122, 116, 104)
    band = pixels[:, 0, 0].numpy()
    np.testing.assert_allclose(band, (np.array(PAD_COLOUR) / 255 - CLIP_MEAN) / CLIP_STD, atol=1e-6)
    with pytest.raises(InputError):
        to_pixels(image[..., 0], 56)


# ------------------------------------------------------------------------------------------------ features


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(36, 64, 3), (37, 50, 3), (20, 20, 3)]]


def test_features_batched_equal_one_at_a_time(tokenizer):
    model = _random_model(seed=5)
    frames = _frames()
    batched = QAlign(model, tokenizer, batch_size=16).frame_features(frames)
    single = np.concatenate([QAlign(model, tokenizer, batch_size=1).frame_features([f]) for f in frames])
    assert batched.shape == (3, 64) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)

    # the reduction: mean over every token position of each half, then over the two halves
    ids = torch.tensor([prompt_ids(tokenizer)] * 2)
    pixels = torch.stack([to_pixels(h, 56) for h in split_halves(frames[1])])
    with torch.no_grad():
        hidden = model(ids, pixels).last_hidden_state
    np.testing.assert_allclose(batched[1], hidden.mean(dim=(0, 1)).numpy(), rtol=0, atol=1e-5)


def test_score_formula(tokenizer):
    model = _random_model(seed=7)
    qalign = QAlign(model, tokenizer)
    images = _frames()
    s15, s01 = qalign.image_scores(images)
    assert s15.shape == (3,) and ((s15 >= 1) & (s15 <= 5)).all()
    np.testing.assert_allclose(s15, 4 * s01 + 1, atol=1e-5)

    level_ids = [tokenizer.encode(w)[0] for w in LEVELS]
    ids = torch.tensor([prompt_ids(tokenizer)])
    with torch.no_grad():
        last = model.lm_head(model(ids, to_pixels(images[0], 56)[None]).last_hidden_state[0, -1])
    probs = torch.softmax(last[level_ids], dim=0)
    assert s15[0] == pytest.approx(float(probs @ torch.tensor([5.0, 4, 3, 2, 1])), abs=1e-5)

    v15, v01 = qalign.video_score(images)
    assert 1 <= v15 <= 5 and v15 == pytest.approx(4 * v01 + 1, abs=1e-5)


def test_source_extracts_one_row_per_keyframe(tokenizer):
    from rqvqa.registry import REGISTRY

    assert REGISTRY.source_class("qalign") is QAlignSource
    frames = _frames()[:2]
    info = VideoInfo("x.mp4", Fraction(30), 60, 2.0, 64, 36, 0, "yuv420p", 8, "h264")
    sample = VideoSample(info=info, keyframe_indices=[0, 30], keyframes=frames)
    engine = QAlign(_random_model(seed=9), tokenizer)
    source = QAlignSource(engine=engine)
    features = source.extract(sample)
    np.testing.assert_allclose(features, engine.frame_features(frames), rtol=0, atol=1e-6)
    # repeated key-frame rows (official padding to 8) give repeated features
    padded = replace(sample, keyframe_indices=[0, 30, 30, 30], keyframes=[*frames, frames[1], frames[1]])
    np.testing.assert_array_equal(source.extract(padded), features[[0, 1, 1, 1]])
    assert source.config()["weights"] == "q-future/one-align"
    assert QAlignSource(load_8bit=True).config_hash() != QAlignSource(dtype=torch.bfloat16).config_hash()
    with pytest.raises(InputError):
        source.extract(replace(sample, keyframes=None))


def test_gpu_benchmark_script_runs_tiny_on_cpu(capsys):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("qalign_gpu_bench", REPO / "bench" / "qalign_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--tiny", "--size", "160x90", "--frames", "2", "--repeats", "1", "--json"])
    assert report["feature_shape"] == [2, TINY.llm.hidden_size]
    assert report["half_frames_per_batch"] == 16 and report["total_s_per_video"] > 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == report


def test_qalign_predictor_scores_a_video(small_video, tokenizer):
    from rqvqa.families.qalign.predictor import QAlignPredictor
    from rqvqa.registry import REGISTRY
    from rqvqa.video.sampling import sample_video

    engine = QAlign(_random_model(seed=13), tokenizer)
    prediction = QAlignPredictor(engine=engine).predict(small_video)
    frames = sample_video(small_video, keyframes=True, mode="full").keyframes
    assert len(prediction.extra["frames"]) == len(frames) == 3  # 2.5 s at 30 fps: frames 0, 30, 60
    expected, expected_01 = engine.video_score(frames)
    assert prediction.score == pytest.approx(expected, abs=1e-6)
    assert prediction.extra["score_0_1"] == pytest.approx(expected_01, abs=1e-6)
    assert 1.0 <= prediction.score <= 5.0
    assert REGISTRY.model("qalign").lower_better is False
    assert REGISTRY.model_class("qalign") is QAlignPredictor


def test_reduced_precision_load_runs_and_stays_close(tmp_path, tokenizer):
    """bfloat16 weights and activations (the GPU path) on the CPU: every dtype cast in the network holds."""
    model32 = _random_model(seed=17)
    save_safetensors(model32.state_dict(), tmp_path / "model.safetensors")
    model16 = load_owl2(tmp_path, device="cpu", dtype=torch.bfloat16, config=TINY)
    assert {p.dtype for p in model16.state_dict().values()} == {torch.bfloat16}
    frames = _frames()
    f16 = QAlign(model16, tokenizer).frame_features(frames)
    f32 = QAlign(model32, tokenizer).frame_features(frames)
    assert f16.dtype == np.float32 and np.isfinite(f16).all()
    assert np.abs(f16 - f32).max() < 0.05 * np.abs(f32).max()


def test_int8_path_on_the_tiny_config(tokenizer):
    """LLM.int8 (what the released KVQ heads saw) through bitsandbytes, wherever it runs on this machine."""
    bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes not installed (pip install 'rqvqa[int8]')")
    from rqvqa.families.qalign.checkpoint import quantize_8bit

    exact = QAlign(_random_model(seed=5), tokenizer)
    model = _random_model(seed=5)
    try:
        quantize_8bit(model)
    except ConfigError as exc:
        pytest.skip(f"no LLM.int8 on this machine: {exc}")
    int8 = QAlign(model.eval(), tokenizer)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert layers and not isinstance(model.lm_head, bnb.nn.Linear8bitLt)
    assert all(layer.weight.dtype == torch.int8 for layer in layers)
    frames = _frames()[:2]
    want, got = exact.frame_features(frames), int8.frame_features(frames)
    assert got.shape == want.shape and np.isfinite(got).all()
    # 8-bit weights move the features a little, not a lot
    relative = np.abs(got - want).max() / np.abs(want).max()
    assert 0 < relative < 0.1, relative

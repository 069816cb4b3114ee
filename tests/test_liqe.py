"""LIQE: prompts, patch selection, logits against a direct open_clip computation, score, loading."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch
from network_helpers import LIQE_TINY, tiny_liqe

from rqvqa.errors import InputError, WeightsError
from rqvqa.families.liqe import network as L
from rqvqa.video.sampling import VideoSample

TINY = LIQE_TINY


@pytest.fixture(scope="module")
def tiny() -> L.LiqeCLIP:
    return tiny_liqe()


def _frame(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ prompts


def _reference_list(text: str, label: str) -> list[str]:
    match = re.search(rf"^- {label}: `([^`]+)`", text, flags=re.MULTILINE)
    assert match, label
    return [w.strip() for w in match.group(1).split(",")]


def test_word_lists_match_the_reference(shared_reference):
    text = (shared_reference / "liqe.md").read_text()
    assert list(L.QUALITIES) == _reference_list(text, "quality")
    assert list(L.SCENES) == _reference_list(text, "scene")
    # the distortion list is wrapped over two lines in the reference
    match = re.search(r"^- distortion: `([^`]+)`", text, flags=re.MULTILINE | re.DOTALL)
    assert match
    assert list(L.DISTORTIONS) == [" ".join(w.split()) for w in match.group(1).split(",")]


def test_prompt_order_and_index():
    prompts = L.prompts()
    assert len(prompts) == L.N_PROMPTS == 495
    assert prompts[0] == "a photo of a animal with jpeg2000 compression artifacts, which is of bad quality"
    assert prompts[494] == "a photo of a others with other artifacts, which is of perfect quality"
    pattern = re.compile(r"a photo of a (.+) with (.+) artifacts, which is of (.+) quality")
    for q, quality in enumerate(L.QUALITIES):
        for s, scene in enumerate(L.SCENES):
            for d, distortion in enumerate(L.DISTORTIONS):
                k = L.prompt_index(q, s, d)
                assert k == q * 99 + s * 11 + d
                assert pattern.fullmatch(prompts[k]).groups() == (scene, distortion, quality)


def test_tokens_fit_without_truncation():
    tokens = L.tokenize_prompts()
    lengths = (tokens != 0).sum(dim=1)
    assert tokens.shape == (495, 24) and int(lengths.min()) == 16 and int(lengths.max()) == 24
    assert bool((tokens[:, 0] == 49406).all())
    eot = tokens.argmax(dim=1)
    assert bool((tokens[torch.arange(495), eot] == 49407).all()) and bool((eot == lengths - 1).all())


# ----------------------------------------------------------------------------------------------- patching


@pytest.mark.parametrize(
    ("width", "height", "rows", "cols", "n", "step"),
    [
        (512, 384, 6, 10, 60, 4),
        (512, 600, 12, 10, 120, 8),
        (720, 1280, 34, 16, 544, 36),
        (1280, 720, 16, 34, 544, 36),
        (1920, 1080, 27, 54, 1458, 97),
    ],
)
def test_patch_grid_matches_reference_table(width, height, rows, cols, n, step):
    grid = L.patch_grid(height, width)
    assert (grid.rows, grid.cols, grid.n_patches) == (rows, cols, n)
    assert grid.indices == tuple(k * step for k in range(15))


def test_few_patches_keeps_all_of_them():
    grid = L.patch_grid(256, 300)  # 2 x 3 = 6 patches < 15
    assert grid.indices == tuple(range(6))
    with pytest.raises(InputError, match="smaller than the 224x224"):
        L.patch_grid(223, 500)


@pytest.mark.parametrize(
    ("width", "height", "size", "stride", "n"),
    [(1920, 1080, (768, 1365), 48, 288), (720, 1280, (1280, 720), 48, 253), (800, 900, (864, 768), 32, 378)],
)
def test_benchmark_preprocessing(width, height, size, stride, n):
    """LIQE's BIQA_benchmark path (liqe.md section 3): 1080p -> 1365x768 at stride 48 (288 patches);
    720x1280 unresized at stride 48 (253 patches)."""
    x = L.prepare_frame(np.zeros((height, width, 3), np.uint8), "benchmark")
    assert tuple(x.shape[1:]) == size
    assert L.stride_for(*size, "benchmark") == stride and L.stride_for(*size) == 32
    assert L.patch_grid(*size, stride=stride).n_patches == n
    assert L.prepare_frame(np.zeros((height, width, 3), np.uint8)).shape[1:] == (height, width)
    with pytest.raises(InputError, match="preprocessing"):
        L.prepare_frame(np.zeros((300, 300, 3), np.uint8), "other")


def test_benchmark_logits_use_the_resized_frame(tiny):
    frame = _frame(800, 780, seed=8)
    from PIL import Image

    resized = np.asarray(Image.fromarray(frame).resize((768, 787), Image.BILINEAR))  # short side 780 -> 768
    torch.testing.assert_close(
        tiny.frame_logits([frame], preprocessing="benchmark"), tiny.frame_logits([resized]), rtol=0, atol=0
    )


def test_selected_patches_are_the_raster_order_unfold():
    x = torch.rand(3, 383, 513)  # odd sizes: remainders dropped
    grid = L.patch_grid(383, 513)
    unfolded = x.unfold(1, 224, 32).unfold(2, 224, 32)  # (3, rows, cols, 224, 224)
    assert unfolded.shape[1:3] == (grid.rows, grid.cols)
    every = unfolded.permute(1, 2, 0, 3, 4).reshape(-1, 3, 224, 224)
    torch.testing.assert_close(L.select_patches(x, grid), every[list(grid.indices)], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------- logits


def _direct_logits(model: L.LiqeCLIP, frame: np.ndarray) -> torch.Tensor:
    """Independent path: every patch through unfold, open_clip's own encode_text (77-token padding) and
    encode_image with normalize=True, then mean over the selected patches."""
    import open_clip

    clip = model.clip
    x = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(L.CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(L.CLIP_STD).view(3, 1, 1)
    x = (x - mean) / std
    every = x.unfold(1, 224, 32).unfold(2, 224, 32).permute(1, 2, 0, 3, 4).reshape(-1, 3, 224, 224)
    step = len(every) // 15
    patches = every[[k * step for k in range(15)]]
    with torch.no_grad():
        text = clip.encode_text(open_clip.tokenize(L.prompts()), normalize=True)
        image = clip.encode_image(patches, normalize=True)
        return (clip.logit_scale.exp() * image @ text.T).mean(dim=0)


def test_prompt_encoding_equals_open_clip_encode_text(tiny):
    import open_clip

    with torch.no_grad():
        full = tiny.clip.encode_text(open_clip.tokenize(L.prompts()[:40]), normalize=True)
    short = torch.nn.functional.normalize(tiny.encode_prompts(L.tokenize_prompts(L.prompts()[:40])), dim=-1)
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-6)


def test_frame_feature_is_the_mean_of_patch_logits(tiny):
    frame = _frame(320, 480, seed=1)  # 4 x 9 = 36 patches, step 2
    got = tiny.frame_logits([frame])
    assert got.shape == (1, 495) and got.dtype == torch.float32
    torch.testing.assert_close(got[0], _direct_logits(tiny, frame), rtol=1e-5, atol=1e-4)
    assert float(got.std()) > 0.1  # the prompts are really told apart


def test_frames_of_different_sizes_in_one_call(tiny):
    a, b = _frame(320, 480, seed=2), _frame(300, 260, seed=3)
    both = tiny.frame_logits([a, b], batch_size=7)  # batches cut across frames
    torch.testing.assert_close(both[0], tiny.frame_logits([a])[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[1], tiny.frame_logits([b])[0], rtol=1e-5, atol=1e-5)


def test_greyscale_and_rgba_frames(tiny):
    grey = _frame(240, 320, seed=4, channels=0)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    expected = tiny.frame_logits([rgb])
    torch.testing.assert_close(tiny.frame_logits([grey]), expected, rtol=0, atol=0)
    torch.testing.assert_close(tiny.frame_logits([grey[:, :, None]]), expected, rtol=0, atol=0)
    rgba = np.concatenate([rgb, _frame(240, 320, seed=5, channels=1)], axis=2)
    torch.testing.assert_close(tiny.frame_logits([rgba]), expected, rtol=0, atol=0)


def test_small_frames_are_upscaled_keeping_aspect(tiny):
    small = _frame(120, 200, seed=6)
    x = L.prepare_frame(small)
    assert x.shape == (3, 224, 373) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert L.prepare_frame(_frame(100, 100)).shape == (3, 224, 224)
    assert L.prepare_frame(_frame(224, 1000)).shape == (3, 224, 1000)  # not touched at exactly 224
    assert tiny.frame_logits([small]).shape == (1, 495)


def test_bad_frames_are_rejected(tiny):
    with pytest.raises(InputError, match="uint8"):
        tiny.frame_logits([np.zeros((300, 300, 3), np.float32)])
    with pytest.raises(InputError, match="got \\(300, 300, 2\\)"):
        tiny.frame_logits([np.zeros((300, 300, 2), np.uint8)])
    with pytest.raises(InputError, match="no frames"):
        tiny.frame_logits([])


# ---------------------------------------------------------------------------------------------------- score


def test_quality_score_formula():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 5, size=(4, 495))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = (p.reshape(4, 5, 9, 11).sum(axis=(2, 3)) * np.arange(1, 6)).sum(axis=1)
    got = L.quality_score(torch.from_numpy(logits))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    marg = L.quality_marginals(torch.from_numpy(logits))
    for key, size in (("quality", 5), ("scene", 9), ("distortion", 11)):
        assert marg[key].shape == (4, size)
        np.testing.assert_allclose(marg[key].sum(dim=1).numpy(), 1.0, rtol=1e-6)


def test_score_at_the_extremes():
    logits = torch.full((5, 495), -1e4)
    for q in range(5):  # all mass on quality level q (any scene/distortion) -> score q + 1
        logits[q, L.prompt_index(q, 3, 4)] = 0.0
    torch.testing.assert_close(L.quality_score(logits), torch.arange(1.0, 6.0))
    assert float(L.quality_score(torch.zeros(495))) == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------------- loading


def _tiny_state_dict(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: torch.randn_like(v) for k, v in L.build_liqe(config=TINY).clip.state_dict().items()}


@pytest.mark.parametrize("layout", ["liqe", "liqe_mix", "training"])
def test_load_both_checkpoint_layouts_from_file(tmp_path, layout):
    state = _tiny_state_dict(11)
    if layout == "liqe":  # bare OpenAI-layout state dict, mixed fp16/fp32 like CLIP's convert_weights
        obj = {k: (v.half() if v.ndim >= 2 else v) for k, v in state.items()}
    elif layout == "liqe_mix":
        obj = {"params": {f"clip_model.{k}": v for k, v in state.items()}}
    else:
        obj = {"model_state_dict": state}
    path = tmp_path / f"{layout}.pt"
    torch.save(obj, path)
    model = L.load_liqe(path, config=TINY)
    loaded = model.clip.state_dict()
    for key, value in state.items():
        expected = value.half().float() if layout == "liqe" and value.ndim >= 2 else value
        torch.testing.assert_close(loaded[key], expected, rtol=0, atol=0)
    assert loaded[key].dtype == torch.float32


def test_loading_a_wrong_layout_names_the_keys(tmp_path):
    state = _tiny_state_dict(12)
    state.pop("visual.proj")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="missing keys: visual.proj.*unexpected keys: extra.weight"):
        L.load_liqe(tmp_path / "bad.pt", config=TINY)


@pytest.mark.slow
def test_full_size_manifest_state_dicts_load(fixtures):
    """Both official layouts, built from the key manifest (every key a distinct constant so a tensor landing
    in the wrong place is caught), load strictly into the full ViT-B-32-quickgelu."""
    manifest = json.loads((fixtures / "manifests" / "clip_vit_b32_liqe_state_dict.json").read_text())
    shapes = manifest["shapes"]
    assert len(shapes) == manifest["num_keys"]
    fp16 = manifest.get("dtypes_after_clip_convert_weights", {})
    model = L.build_liqe()
    own = model.clip.state_dict()
    assert set(own) == set(shapes)
    values = {key: (k + 1) / 1024 for k, key in enumerate(shapes)}
    bare = {
        key: torch.full(shape, values[key], dtype=getattr(torch, fp16.get(key, "float32")))
        for key, shape in shapes.items()
    }
    for obj in (bare, {"params": {f"clip_model.{k}": v for k, v in bare.items()}}):
        model.load_clip_state_dict(L.liqe_state_dict(obj))
        loaded = model.clip.state_dict()
        for key, value in values.items():
            tensor = loaded[key]
            assert list(tensor.shape) == shapes[key] and tensor.dtype == torch.float32
            assert float(tensor.flatten()[0]) == value and float(tensor.flatten()[-1]) == value, key
        with torch.no_grad():  # next round must really overwrite everything
            for p in model.clip.parameters():
                p.zero_()


# ----------------------------------------------------------------------------------------------- source


def test_source_extract_and_score(tiny):
    from rqvqa.families.liqe.source import LiqeSource
    from rqvqa.source import source_class

    frames = [_frame(260, 300, seed=20 + i) for i in range(3)]
    sample = VideoSample(info=None, keyframe_indices=[0, 30, 60], keyframes=frames)  # type: ignore[arg-type]
    source = source_class("liqe")(model=tiny)
    assert isinstance(source, LiqeSource) and source.dim == 495 and source.needs == {"keyframes"}
    feature = source.extract(sample)
    assert feature.shape == (3, 495) and feature.dtype == np.float32
    np.testing.assert_allclose(feature, tiny.frame_logits(frames).numpy(), rtol=1e-6)
    video, per_frame = source.score(sample)
    np.testing.assert_allclose(per_frame, L.quality_score(torch.from_numpy(feature)).numpy(), rtol=1e-5)
    assert video == pytest.approx(float(per_frame.mean())) and 1.0 <= video <= 5.0
    with pytest.raises(InputError, match="no native-resolution key frames"):
        source.extract(VideoSample(info=None, keyframe_indices=[]))  # type: ignore[arg-type]


def test_source_config_names_weights_and_dtype():
    from rqvqa.families.liqe.source import LiqeSource

    hashes = {
        LiqeSource().config_hash(),
        LiqeSource(weights="liqe-mix").config_hash(),
        LiqeSource(dtype=torch.float16).config_hash(),
    }
    assert len(hashes) == 3
    assert LiqeSource(weights="liqe-mix").config() == {"weights": "liqe-mix", "dtype": "float32"}


def test_prompt_features_are_cached_on_disk(tmp_path, monkeypatch):
    import rqvqa.families.liqe.source as source_module

    monkeypatch.setenv("RQVQA_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(source_module, "load_liqe", lambda path: L.load_liqe(path, config=TINY))
    weights = tmp_path / "LIQE.pt"
    torch.save(_tiny_state_dict(13), weights)
    frames = [_frame(240, 260, seed=30)]
    sample = VideoSample(info=None, keyframe_indices=[0], keyframes=frames)  # type: ignore[arg-type]
    source = source_module.LiqeSource(weights=weights)
    config = source.config()
    first = source.extract(sample)
    # loading changes no key; the key follows the weights' content, not only their name
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert source.config() == config == {"weights": "LIQE.pt", "dtype": "float32", "sha256": sha}
    cached = list((tmp_path / "home" / "liqe").glob("text-*.safetensors"))
    assert len(cached) == 1

    def no_text_tower(*args, **kwargs):
        raise AssertionError("prompt features should come from the disk cache")

    monkeypatch.setattr(L.LiqeCLIP, "encode_prompts", no_text_tower)
    second = source_module.LiqeSource(weights=weights).extract(sample)
    np.testing.assert_array_equal(first, second)
    weights.touch()  # new modification time = possibly new weights: not served from the old entry
    with pytest.raises(AssertionError, match="disk cache"):
        source_module.LiqeSource(weights=weights).extract(sample)


# ------------------------------------------------------------------------------------------------ predictor


def test_liqe_predictor_scores_every_second(tiny, small_video):
    from rqvqa.api import create_predictor
    from rqvqa.video.sampling import sample_video

    predictor = create_predictor("liqe", model=tiny)
    assert predictor.card.score_range == (1.0, 5.0) and predictor.card.lower_better is False
    assert predictor.card.weights == "injected" and predictor.card.options["mode"] == "full"
    prediction = predictor.predict(small_video)
    frames = sample_video(small_video, keyframes=True, mode="full").keyframes
    expected = L.quality_score(tiny.frame_logits(frames))
    assert len(prediction.per_second) == len(frames) == 3  # 2.5-s clip: key frames at 0, 1, 2 s
    np.testing.assert_allclose(prediction.per_second, expected.numpy(), rtol=1e-5)
    assert prediction.score == pytest.approx(float(expected.mean()), rel=1e-5)
    assert sum(prediction.extra["quality_probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert prediction.extra["scene"] in L.SCENES and prediction.extra["distortion"] in L.DISTORTIONS


def test_liqe_predictor_weights_argument(tmp_path, monkeypatch):
    from rqvqa.errors import WeightsError
    from rqvqa.families.liqe.predictor import LiqePredictor

    monkeypatch.delenv("RQVQA_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("RQVQA_HOME", str(tmp_path / "home"))  # its own first-use pins
    with pytest.raises(WeightsError, match="LIQE.pt"):
        LiqePredictor()  # a missing checkpoint is one error at construction, not one per video
    torch.save(_tiny_state_dict(3), tmp_path / "LIQE.pt")
    torch.save(_tiny_state_dict(4), tmp_path / "liqe_mix.pt")
    monkeypatch.setenv("RQVQA_WEIGHTS_DIR", str(tmp_path))
    assert LiqePredictor().source.weights == "liqe"
    assert LiqePredictor().card.weights == "liqe"
    assert LiqePredictor(weights="liqe-mix").source.weights == "liqe-mix"
    by_dir = LiqePredictor(weights=tmp_path, variant="liqe-mix").source
    assert (by_dir.weights, by_dir.weights_dir) == ("liqe-mix", tmp_path)
    file = tmp_path / "mine.pt"
    file.write_bytes(b"")
    assert LiqePredictor(weights=file).source.weights == str(file)
    assert LiqePredictor(weights=file).card.weights == "mine.pt"


# ------------------------------------------------------------------------ golden: the official 495-d feature


@pytest.mark.golden
def test_golden_tiny_feature_matches_official(fixtures):
    """`liqe_tiny`: RQ-VQA's LIQE class on the official OpenAI CLIP code (tiny random CLIP, a real key frame).
    Shapes, seed, frame size and the patch grid are read from the sidecar (a held-out copy differs)."""
    from safetensors.torch import load_file

    meta = json.loads((fixtures / "liqe_tiny.json").read_text())
    tensors = load_file(str(fixtures / "liqe_tiny.safetensors"))
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    assert len(state) == meta["model_keys"]
    model = L.build_liqe(config=meta["constructor_config"]["open_clip_equivalent"])
    model.load_clip_state_dict(state, source=fixtures / "liqe_tiny.safetensors")

    # the prompts and their token ids, in the official order (ours are cut after the longest prompt)
    official_tokens = tensors["const.prompt_tokens"]
    ours = L.tokenize_prompts()
    assert official_tokens.shape == (L.N_PROMPTS, 77)
    assert torch.equal(ours, official_tokens[:, : ours.shape[1]])
    assert not official_tokens[:, ours.shape[1] :].any()

    # the L2-normalised prompt features
    torch.testing.assert_close(model.text_features(), tensors["output.text_features"], rtol=0, atol=1e-6)

    # the patch grid: which 224x224 patches of the raster-order unfold are kept
    frame = tensors["input.frame"].numpy()
    assert list(frame.shape) == meta["tensors"]["input.frame"]["shape"]
    height, width = frame.shape[:2]
    grid = L.patch_grid(height, width)
    assert grid.stride == meta["patches"]["stride"]
    assert grid.n_patches == meta["patches"]["count"]
    assert list(grid.indices) == meta["patches"]["selected"]
    assert list(grid.indices) == tensors["output.patch_indices"].tolist()

    # per-patch logits (exp(logit_scale) * cosine) and their mean, the 495-d feature
    patches = L.normalise(L.select_patches(L.prepare_frame(frame), grid))
    patch_logits = model.patch_logits(patches)
    torch.testing.assert_close(patch_logits, tensors["output.patch_logits"], rtol=1e-5, atol=1e-4)
    feature = model.frame_logits([frame])
    assert feature.shape == tuple(meta["tensors"]["output.logits"]["shape"])
    torch.testing.assert_close(feature, tensors["output.logits"], rtol=1e-5, atol=1e-4)
    # not a vacuous match: the feature tells the prompts apart
    assert float(tensors["output.logits"].std()) > 0.1

"""Official checkpoint layouts (key manifests) -> our modules: every tensor lands where it should."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rqvqa.cli import main
from rqvqa.errors import WeightsError
from rqvqa.families.rqvqa.model import RQVQA, preset
from rqvqa.families.rqvqa.remap import (
    load_lsvq_backbone,
    load_official,
    official_key,
    read_model_config,
    remap_official,
)

pytestmark = pytest.mark.slow  # full-size Swin-B on CPU (a few seconds per build)

DROPPED_SUFFIXES = ("relative_position_index", "attn_mask")


def _random_state(manifest: dict, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with exactly the official names, shapes and dtypes, filled with distinct random values."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in manifest["shapes"].items():
        if manifest["dtypes"][key] == "int64":
            state[key] = torch.randint(0, 1000, tuple(shape), dtype=torch.int64, generator=gen)
        else:
            state[key] = torch.randn(tuple(shape), generator=gen)
    return state


def _manifest(shared_reference, name: str) -> dict:
    path = shared_reference / "fixtures" / "manifests" / name
    if not path.is_file():
        pytest.skip(f"manifest {path} not found")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def rqvqa_manifest(shared_reference):
    return _manifest(shared_reference, "rqvqa_full_state_dict.json")


@pytest.fixture(scope="module")
def lsvq_manifest(shared_reference):
    return _manifest(shared_reference, "swin_b_384_in22k_lsvq_state_dict.json")


@pytest.fixture(scope="module")
def full_model():
    torch.manual_seed(0)
    return RQVQA(preset("rqvqa"))


def _assert_landed(model: torch.nn.Module, official: dict, kind: str) -> None:
    """Every tensor of the model equals the official tensor the inverse mapping points to, and every official
    key was used, except the old-timm buffers that timm 1.x recomputes."""
    own = model.state_dict()
    used = set()
    for key, value in own.items():
        source = official_key(key, kind)
        assert source in official, f"{key} -> {source} not in the official layout"
        assert torch.equal(value, official[source]), f"{key} does not hold {source}"
        used.add(source)
    unused = set(official) - used
    assert unused and all(k.endswith(DROPPED_SUFFIXES) for k in unused), sorted(unused)[:5]


def test_manifests_have_the_documented_sizes(rqvqa_manifest, lsvq_manifest):
    assert rqvqa_manifest["num_keys"] == len(rqvqa_manifest["shapes"]) == 429
    assert lsvq_manifest["num_keys"] == len(lsvq_manifest["shapes"]) == 366


def test_released_kvq_checkpoint_loads_into_rqvqa_preset(full_model, rqvqa_manifest):
    assert full_model.base.grid == (12, 12) and full_model.base.out_dim == 1024 and full_model.in_dim == 6639
    official = _random_state(rqvqa_manifest, seed=1)
    load_official(full_model, official)
    _assert_landed(full_model, official, "rqvqa")
    # 24 relative_position_index + 11 attn_mask buffers are the only official keys without a home
    assert len(full_model.state_dict()) == 429 - 35


def test_missing_and_unexpected_keys_are_listed(full_model, rqvqa_manifest):
    official = _random_state(rqvqa_manifest, seed=2)
    missing = dict(official)
    del missing["module.bot4.net.1.net.3.to_qk.weight"]
    with pytest.raises(WeightsError, match=r"1 missing keys: base\.bot\.net\.1\.net\.3\.to_qk\.weight"):
        load_official(full_model, missing)
    extra = dict(official, **{"module.extra_head.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"1 unexpected keys: extra_head\.weight"):
        load_official(full_model, extra)
    reshaped = dict(official, **{"module.quality.0.weight": torch.zeros(128, 1280)})
    with pytest.raises(WeightsError, match=r"head\.quality\.0\.weight \(128, 1280\) != \(128, 6639\)"):
        load_official(full_model, reshaped)


def test_lsvq_backbone_initialises_only_the_swin(full_model, lsvq_manifest):
    official = _random_state(lsvq_manifest, seed=3)
    before = {k: v.clone() for k, v in full_model.state_dict().items() if not k.startswith("base.swin.")}
    load_lsvq_backbone(full_model, official)
    for key, value in full_model.state_dict().items():
        if key.startswith("base.swin."):
            assert torch.equal(value, official[official_key(key, "lsvq-base")]), key
        else:
            assert torch.equal(value, before[key]), f"{key} changed although the LSVQ head is discarded"
    # the regressor's 1280-d input is not RQ-VQA's 6639: a full load must refuse it
    with pytest.raises(WeightsError, match="missing keys: base.bot"):
        load_official(full_model, official)


def test_remap_moves_downsample_one_stage_later(lsvq_manifest):
    official = _random_state(lsvq_manifest, seed=4)
    ours = remap_official(official)
    assert torch.equal(
        ours["base.swin.layers.1.downsample.reduction.weight"],
        official["feature_extraction.layers.0.downsample.reduction.weight"],
    )
    assert not any(k.startswith("base.swin.layers.0.downsample") for k in ours)
    assert not any(k.endswith(DROPPED_SUFFIXES) for k in ours)
    assert len(ours) == 366 - 24 - 11
    # train_base_model.py's RQ_VQA_base_model nests the Swin one level deeper: same result
    nested = {
        k.replace("feature_extraction.", "feature_extraction.feature_extraction.", 1): v
        for k, v in official.items()
    }
    assert remap_official(nested).keys() == ours.keys()


def test_convert_cli_lsvq_base(tmp_path, lsvq_manifest, capsys):
    official = _random_state(lsvq_manifest, seed=5)
    src = tmp_path / "Swin_b_384_in22k_SlowFast_Fast_LSVQ.pth"
    torch.save(official, src)
    out = tmp_path / "lsvq_base.safetensors"
    assert main(["convert", str(src), "-o", str(out), "--kind", "lsvq-base", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["preset"] == "base" and summary["tensors"] == 366 - 35
    exported = load_file(str(out))
    assert len(exported) == 366 - 35
    for key, value in exported.items():
        assert torch.equal(value, official[official_key(key, "lsvq-base")]), key
    config = read_model_config(out)
    assert config["name"] == "base" and config["base"]["pooling"] == "avg"


def test_convert_cli_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main(["convert", str(bad), "-o", str(tmp_path / "x.safetensors"), "--kind", "rqvqa"]) == 1
    assert "broken.pth: not a checkpoint (neither a torch archive nor a pickle" in capsys.readouterr().err

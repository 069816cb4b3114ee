"""Training loop (resume, metrics files, selection), ensembles, the rqvqa-kvq predictor, CLI paths."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from rqvqa.checkpoints import read_checkpoint
from rqvqa.cli import main
from rqvqa.data.manifest import Manifest, ManifestRow
from rqvqa.errors import ConfigError
from rqvqa.families.rqvqa.model import ModelConfig, parse_sources
from rqvqa.families.rqvqa.preprocess import FrameTransform, Preprocessing
from rqvqa.families.rqvqa.remap import save_model
from rqvqa.families.rqvqa.swin_bot import BaseNetConfig
from rqvqa.pipeline import score_video
from rqvqa.train import (
    ArrayDataset,
    Ensemble,
    TrainConfig,
    head_only_config,
    init_backbone,
    load_ensemble,
    read_ensemble_spec,
    train_splits,
)


def _linear_data(n=60, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = x @ rng.normal(size=dim) + 0.1 * rng.normal(size=n)
    rows = tuple(ManifestRow(f"v{i}.mp4", float(y[i]), f"g{i // 2}") for i in range(n))
    return {"feat": x}, Manifest(rows)


def _run(features, manifest, cfg, out):
    return train_splits(
        head_only_config(features),
        manifest,
        lambda r, t, s: ArrayDataset(features, manifest.mos, r),
        cfg,
        out,
    )


def test_head_only_learns_and_writes_metrics(tmp_path):
    features, manifest = _linear_data()
    cfg = TrainConfig(epochs=6, lr=1e-2, batch_size=8, splits=2, progress=False)
    summary = _run(features, manifest, cfg, tmp_path)
    assert summary["SRCC"]["median"] > 0.9
    rows = list(csv.DictReader((tmp_path / "split0" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert float(rows[0]["lr"]) == pytest.approx(1e-2)
    history = json.loads((tmp_path / "split1" / "metrics.json").read_text())
    best = max(history, key=lambda r: r["SRCC"])
    assert summary["splits"][1]["epoch"] == best["epoch"]  # best epoch by validation SRCC
    ensemble = json.loads((tmp_path / "ensemble.json").read_text())
    assert ensemble["members"] == ["split0/best.safetensors", "split1/best.safetensors"]
    # splits never separate a group
    assert summary["splits"][0]["seed"] == 10 and summary["splits"][1]["seed"] == 20


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    features, manifest = _linear_data(seed=1)
    full = TrainConfig(epochs=4, lr=1e-2, batch_size=8, splits=1, progress=False, select="last")
    _run(features, manifest, full, tmp_path / "a")
    _run(features, manifest, TrainConfig(**{**full.__dict__, "epochs": 2}), tmp_path / "b")
    state = read_checkpoint(tmp_path / "b" / "split0" / "last.safetensors")
    assert "optimizer.0.exp_avg" in state and "rng.torch" in state
    _run(features, manifest, full, tmp_path / "b")  # resumes at epoch 3
    a = read_checkpoint(tmp_path / "a" / "split0" / "best.safetensors")
    b = read_checkpoint(tmp_path / "b" / "split0" / "best.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    hist_a = json.loads((tmp_path / "a" / "split0" / "metrics.json").read_text())
    hist_b = json.loads((tmp_path / "b" / "split0" / "metrics.json").read_text())
    assert [r["train_loss"] for r in hist_a] == [r["train_loss"] for r in hist_b]
    assert hist_b[-1]["lr"] == pytest.approx(1e-2)  # StepLR state restored (step 10: no decay yet)


def test_step_lr_schedule_and_standardised_ensemble(tmp_path):
    features, manifest = _linear_data(seed=2)
    features["feat"] = features["feat"] * 1000 + 5  # standardisation makes the scale irrelevant
    cfg = TrainConfig(
        epochs=4, lr=1e-2, step_size=2, gamma=0.5, batch_size=8, splits=2, standardise=True, progress=False
    )
    summary = _run(features, manifest, cfg, tmp_path)
    assert summary["SRCC"]["median"] > 0.9
    lrs = [r["lr"] for r in json.loads((tmp_path / "split0" / "metrics.json").read_text())]
    assert lrs == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3])
    ensemble = load_ensemble(tmp_path, read_ensemble_spec(tmp_path))
    x = torch.from_numpy(features["feat"][:5])
    _, score = ensemble(None, {"feat": x})
    manual = []
    for member, scaler in zip(ensemble.members, ensemble.scalers, strict=True):
        z = torch.from_numpy(scaler.apply("feat", features["feat"][:5]))
        manual.append(member(None, {"feat": z})[1])
    assert torch.allclose(score, torch.stack(manual).mean(0), atol=1e-6)


def _tiny_config():
    return ModelConfig(sources=parse_sources(["stats"]), base=BaseNetConfig.tiny(pooling="avg", img_size=64))


def test_init_backbone_copies_only_the_swin(tmp_path):
    from rqvqa.families.rqvqa.model import RQVQA

    torch.manual_seed(0)
    stage1 = RQVQA(_tiny_config())
    path = save_model(stage1, tmp_path / "base.safetensors")
    torch.manual_seed(1)
    stage2 = RQVQA(ModelConfig(sources=(), base=BaseNetConfig.tiny(pooling="bot", img_size=64)))
    bot_before = {k: v.clone() for k, v in stage2.base.bot.state_dict().items()}
    init_backbone(stage2, path)
    for k, v in stage1.base.swin.state_dict().items():
        assert torch.equal(stage2.base.swin.state_dict()[k], v)
    assert all(torch.equal(bot_before[k], v) for k, v in stage2.base.bot.state_dict().items())


def test_kvq_predictor_names_missing_sources(tmp_path):
    from rqvqa.families.rqvqa.predictor import RQVQAKVQ

    config = ModelConfig(sources=parse_sources(["stats", "not_landed:7"]), base=None)
    with pytest.raises(ConfigError, match="needs feature sources that are not available yet: not_landed"):
        RQVQAKVQ(weights=tmp_path, config=config)


def test_kvq_predictor_is_the_mean_of_the_members(tmp_path, small_video):
    # The expectation comes from the predictor's public behaviour, not from its internals: the ensemble's
    # scores must be the mean of what each member, loaded alone, predicts.
    from rqvqa.families.rqvqa.model import RQVQA
    from rqvqa.families.rqvqa.predictor import RQVQAKVQ
    from rqvqa.registry import REGISTRY

    assert "rqvqa-kvq" in REGISTRY.model_names()
    (tmp_path / "all").mkdir()
    for seed in range(3):
        torch.manual_seed(seed)
        member = RQVQA(_tiny_config()).eval()
        save_model(member, tmp_path / "all" / f"member{seed}.safetensors")
        (tmp_path / f"alone{seed}").mkdir()
        save_model(member, tmp_path / f"alone{seed}" / f"member{seed}.safetensors")
    ensemble = RQVQAKVQ(weights=tmp_path / "all").predict(small_video)
    alone = [RQVQAKVQ(weights=tmp_path / f"alone{seed}").predict(small_video) for seed in range(3)]
    scores = [p.score for p in alone]
    assert max(scores) - min(scores) > 1e-3  # the members really differ
    assert ensemble.score == pytest.approx(np.mean(scores), abs=1e-5)
    assert len(ensemble.per_second) == 3  # a 2.5-s clip has 3 distinct seconds
    np.testing.assert_allclose(ensemble.per_second, np.mean([p.per_second for p in alone], axis=0), atol=1e-5)
    assert ensemble.extra["members"] == 3 and {p.extra["members"] for p in alone} == {1}


def test_ensemble_averages_frame_and_video_scores_and_needs_a_member():
    from rqvqa.families.rqvqa.model import RQVQA

    config = ModelConfig(sources=parse_sources(["stats:12"]), base=None)
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        members.append(RQVQA(config).eval())
    features = {"stats": torch.randn(2, 8, 12, generator=torch.Generator().manual_seed(5))}
    with torch.no_grad():
        outputs = [m(None, features) for m in members]
        frame_scores, scores = Ensemble(members)(None, features)
    assert frame_scores.shape == outputs[0][0].shape and scores.shape == (2,)
    assert not torch.allclose(outputs[0][1], outputs[1][1])
    torch.testing.assert_close(scores, (outputs[0][1] + outputs[1][1]) / 2)
    torch.testing.assert_close(frame_scores, (outputs[0][0] + outputs[1][0]) / 2)
    with pytest.raises(ConfigError, match="at least one model"):
        Ensemble([])


def test_train_cli_head_only_and_errors(tmp_path, capsys):
    features, manifest = _linear_data(n=40)
    lines = ["video,mos,group"] + [f"{r.video},{r.mos},{r.group}" for r in manifest]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    np.save(tmp_path / "feat.npy", features["feat"])
    args = ["train", str(tmp_path / "m.csv"), "--features", str(tmp_path / "feat.npy"), "--out"]
    argv = [*args, str(tmp_path / "out"), "--splits", "2", "--epochs", "3", "--lr", "1e-2", "--no-progress"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["splits"]) == 2 and summary["SRCC"]["median"] > 0.8
    np.save(tmp_path / "short.npy", features["feat"][:10])
    assert main([*args, str(tmp_path / "o2"), "--features", str(tmp_path / "short.npy")]) == 1
    assert "10 feature rows for 40 manifest rows" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o3")]) == 1
    assert "give --store" in capsys.readouterr().err


def test_collate_masks_padded_frames_out_of_the_video_mean():
    from rqvqa.families.rqvqa.model import RQVQA
    from rqvqa.train import collate

    torch.manual_seed(0)
    model = RQVQA(ModelConfig(sources=parse_sources(["stats", "clip:3"]), base=None)).eval()
    short = {"frames": None, "features": {"stats": torch.randn(2, 12), "clip": torch.randn(3)}, "mos": 1.0}
    long = {"frames": None, "features": {"stats": torch.randn(5, 12), "clip": torch.randn(3)}, "mos": 2.0}
    batch = collate([{**short, "index": 0}, {**long, "index": 1}])
    assert batch["features"]["stats"].shape == (2, 5, 12) and batch["features"]["clip"].shape == (2, 3)
    assert batch["mask"].tolist() == [[True, True, False, False, False], [True] * 5]
    with torch.no_grad():
        _, pooled = model(None, batch["features"], batch["mask"])
        _, alone = model(None, {k: v.unsqueeze(0) for k, v in short["features"].items()})
    assert torch.allclose(pooled[0], alone[0], atol=1e-6)


def test_init_backbone_from_an_official_lsvq_layout_checkpoint(tmp_path):
    from rqvqa.families.rqvqa.model import RQVQA
    from rqvqa.families.rqvqa.remap import official_key

    torch.manual_seed(3)
    lsvq = RQVQA(ModelConfig(sources=parse_sources(["slowfast"]), base=BaseNetConfig.tiny(pooling="avg")))
    official = {official_key(k, "lsvq-base"): v for k, v in lsvq.state_dict().items()}
    assert any(k.startswith("feature_extraction.") for k in official)
    torch.save(official, tmp_path / "lsvq.pth")
    torch.manual_seed(4)
    full = RQVQA(ModelConfig(sources=parse_sources(["slowfast"]), base=BaseNetConfig.tiny(pooling="bot")))
    head_before = full.head.quality[0].weight.clone()
    init_backbone(full, tmp_path / "lsvq.pth")
    for k, v in lsvq.base.swin.state_dict().items():
        assert torch.equal(full.base.swin.state_dict()[k], v), k
    assert torch.equal(full.head.quality[0].weight, head_before)  # the regressor is discarded


def test_head_only_cli_defaults_and_validation_before_training(tmp_path, capsys):
    from rqvqa.cli.train import _train_config
    from rqvqa.train import HEAD_ONLY_DEFAULTS

    features, manifest = _linear_data(n=3)
    lines = ["video,mos,group"] + [f"{r.video},{r.mos},{r.group}" for r in manifest]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    np.save(tmp_path / "feat.npy", features["feat"])
    out = tmp_path / "out"
    argv = ["train", str(tmp_path / "m.csv"), "--features", str(tmp_path / "feat.npy"), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 1
    assert "training needs at least 4" in capsys.readouterr().err
    assert not (out / "split0").exists()  # refused before the first epoch

    import argparse

    from rqvqa.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.register(parser.add_subparsers())
    head = _train_config(parser.parse_args(argv))
    assert (head.lr, head.epochs, head.batch_size, head.standardise) == tuple(HEAD_ONLY_DEFAULTS.values())
    video = _train_config(parser.parse_args(["train", "m.csv", "--out", "o", "--store", "s"]))
    assert (video.lr, video.epochs, video.batch_size, video.standardise) == (1e-5, 30, 6, False)
    given = _train_config(parser.parse_args(["train", *argv[1:], "--lr", "0.5", "--no-standardise"]))
    assert (given.lr, given.standardise, given.epochs) == (0.5, False, 50)


def test_split_parts_too_small_are_refused():
    from rqvqa.data.splits import Split
    from rqvqa.train import check_splits

    check_splits([Split("a", [0, 1, 2], [3, 4])], 5)
    with pytest.raises(ConfigError, match="split b has 1 validation video"):
        check_splits([Split("b", [0, 1, 2, 3], [4])], 5)


def test_trained_ensemble_carries_its_own_card(tmp_path, small_video):
    from rqvqa.families.rqvqa.model import RQVQA
    from rqvqa.families.rqvqa.predictor import RQVQAKVQ

    torch.manual_seed(0)
    model = RQVQA(_tiny_config()).eval()
    save_model(model, tmp_path / "m.safetensors")
    card = {
        "name": "rqvqa-trained:run1",
        "scale": "training labels (0 to 1; raw regressor output, unbounded)",
        "score_range": [0.0, 1.0],
        "training": "full, sources stats",
        "splits": "1 seeded group-aware splits, ratio 0.8, seed 10",
        "metrics": {"SRCC": 0.5},
    }
    spec = {
        "model": model.config.to_dict(),
        "members": ["m.safetensors"],
        "scalers": None,
        "preprocessing": Preprocessing("full", FrameTransform(resize=64, crop=64)).to_dict(),
        "card": card,
    }
    (tmp_path / "ensemble.json").write_text(json.dumps(spec))
    predictor = RQVQAKVQ(weights=tmp_path)
    assert (predictor.card.name, predictor.card.score_range) == ("rqvqa-trained:run1", (0.0, 1.0))
    assert "SRCC 0.5" in predictor.card.description
    assert RQVQAKVQ.name == "rqvqa-kvq"  # the class (the released model's card) is untouched
    # the preprocessing saved with the weights is what runs: here every second (mode "full")
    assert predictor.mode == "full" and predictor.card.preprocessing["mode"] == "full"
    row = score_video(predictor, small_video)
    assert row["model"] == "rqvqa-trained:run1" and row["weights"] == tmp_path.name
    assert row["status"] == "ok", row["error"]
    assert np.isfinite(row["score"]) and len(row["per_second"]) == 3  # 2.5 s: seconds 0, 1, 2


def test_object_npy_is_a_clean_error_in_train_and_benchmark_features(tmp_path, capsys):
    features, manifest = _linear_data(n=20)
    lines = ["video,mos,group"] + [f"{r.video},{r.mos},{r.group}" for r in manifest]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "mos.csv").write_text("\n".join(f"{r.video},{r.mos}" for r in manifest) + "\n")
    objects = np.empty((20, 5), dtype=object)
    objects[:] = 1.0
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    feats = str(tmp_path / "objects.npy")
    assert main(["train", str(tmp_path / "m.csv"), "--features", feats, "--out", str(tmp_path / "o")]) == 1
    train_err = capsys.readouterr().err
    assert main(["benchmark-features", feats, str(tmp_path / "mos.csv")]) == 1
    bench_err = capsys.readouterr().err
    for err in (train_err, bench_err):
        assert err.startswith(f"rqvqa: error: {feats}: cannot read features (Object arrays cannot be loaded")
        assert err.count("\n") == 1 and "Traceback" not in err


def test_inference_imports_no_training_code():
    import subprocess
    import sys

    code = (
        "import sys, rqvqa.families.rqvqa.predictor\n"
        "print([m for m in sys.modules if m.startswith('rqvqa.train')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_kvq_predictor_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    from rqvqa.errors import WeightsError
    from rqvqa.families.rqvqa.predictor import RQVQAKVQ

    monkeypatch.setenv("RQVQA_HOME", str(tmp_path))
    monkeypatch.delenv("RQVQA_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match="run `rqvqa weights download rqvqa-kvq`"):
        RQVQAKVQ()


def test_training_that_will_not_fit_is_refused_with_what_would(monkeypatch):
    from types import SimpleNamespace

    from rqvqa.families.rqvqa.swin_bot import BaseNetConfig
    from rqvqa.train import loop

    swin_b = SimpleNamespace(
        config=SimpleNamespace(base=BaseNetConfig()),
        parameters=lambda: [torch.zeros(1).expand(94_000_000)],  # numel without the memory
    )
    cfg = TrainConfig(batch_size=6)  # 48 frames per batch
    need = loop.training_memory_mb(swin_b, cfg)
    per_frame = loop.FRAME_ACTIVATION_MB[False]
    assert need == pytest.approx(16 * 94_000_000 / 2**20 + 48 * per_frame)
    monkeypatch.setattr(loop, "available_memory_mb", lambda device: 4 * per_frame * 8 + 2000)
    with pytest.raises(
        ConfigError, match=r"will not fit.*use --batch-size 4 or less, or add --grad-checkpointing"
    ):
        loop.check_memory(swin_b, cfg, torch.device("cpu"))
    monkeypatch.setattr(loop, "available_memory_mb", lambda device: need + 1)
    loop.check_memory(swin_b, cfg, torch.device("cpu"))  # fits: no error
    tiny = SimpleNamespace(config=SimpleNamespace(base=BaseNetConfig.tiny()), parameters=lambda: [])
    assert loop.training_memory_mb(tiny, cfg) is None  # not measured: never refused
    assert loop.FRAME_ACTIVATION_MB[True] < per_frame


def test_kvq_source_precision_defaults_to_what_the_released_heads_saw(monkeypatch):
    import importlib.util

    from rqvqa.families.rqvqa.predictor import source_precision

    assert source_precision("cpu", None, None) == (None, False)
    assert source_precision("cpu", "bfloat16", True) == ("bfloat16", True)
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    assert source_precision("cuda", None, None) == ({"liqe": "float16", "qalign": "float16"}, has_bnb)
    assert source_precision("cuda:1", "float32", False) == ("float32", False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert source_precision("cuda", None, None)[1] is False  # no bitsandbytes: fp16 Q-Align


def test_training_table_says_when_the_fit_reversed_the_ranking(capsys):
    """The official figures stay; a split whose 4-parameter logistic is decreasing gets a note."""
    import argparse

    from rqvqa.cli.train import _report
    from rqvqa.train.loop import _metrics, summarise

    mos = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.5])
    reversed_row = {
        "split": "0",
        "epoch": 1,
        **_metrics(np.array([4.0, 3.0, 4.5, 2.0, 1.5, 2.5]), mos, "logistic4"),
    }
    assert reversed_row["fit_direction"] == "decreasing" and reversed_row["SRCC"] < 0 < reversed_row["PLCC"]
    good_row = {"split": "1", "epoch": 1, **_metrics(mos + 0.1 * np.sin(mos), mos, "logistic4")}
    assert good_row["fit_direction"] == "increasing"
    assert _report(summarise([reversed_row, good_row]), argparse.Namespace(json=False, out="runs")) == 0
    out = " ".join(capsys.readouterr().out.split())
    srcc = f"{reversed_row['SRCC']:.4f}"
    assert f"note: split 0: the fitted logistic is decreasing: it reversed the ranking (SRCC {srcc}" in out
    assert "split 1: the fitted" not in out

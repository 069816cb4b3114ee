"""Feature store: keys, atomic writes, resumability, key-frame cache, video ids; the `stats` source."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rqvqa.errors import ConfigError, InputError
from rqvqa.families.stats.source import frame_statistics
from rqvqa.registry import REGISTRY
from rqvqa.source import source_class
from rqvqa.store import FeatureStore, video_id


def test_video_id_relative_to_manifest_root(tmp_path):
    assert video_id("train/0001.mp4") == "train/0001"
    assert video_id(tmp_path / "train" / "0001.mp4", root=tmp_path) == "train/0001"
    assert video_id("./a/b.c.mkv", root=tmp_path) == "a/b.c"


def test_video_id_unsafe_and_outside_paths_are_distinct(tmp_path):
    a = video_id("clips/my video.mp4")
    b = video_id("clips/my_video.mp4")
    assert a != b and a.startswith("clips/my_video-") and b == "clips/my_video"
    outside_1 = video_id("/elsewhere/x/v.mp4", root=tmp_path)
    outside_2 = video_id("/elsewhere/y/v.mp4", root=tmp_path)
    assert outside_1 != outside_2 and outside_1.startswith("v-")
    assert "/" not in outside_1 and ".." not in video_id("../up/v.mp4")


def test_save_load_roundtrip_and_keys(tmp_path):
    store = FeatureStore(tmp_path)
    x = np.arange(24, dtype=np.float64).reshape(8, 3)
    store.save("stats", "abc123", "train/0001", x)
    assert store.has("stats", "abc123", "train/0001")
    assert not store.has("stats", "other", "train/0001")
    y = store.load("stats", "abc123", "train/0001")
    assert y.dtype == np.float32 and np.array_equal(y, x.astype(np.float32))
    store.save("stats", "abc123", "v2", np.ones(5))
    many = store.load_many("stats", "abc123", ["v2", "train/0001"])
    assert [m.shape for m in many] == [(5,), (8, 3)]
    assert store.missing("stats", "abc123", ["v2", "v3"]) == ["v3"]
    assert store.hashes("stats") == ["abc123"]
    with pytest.raises(InputError, match="no stored stats features"):
        store.load("stats", "abc123", "v3")
    with pytest.raises(InputError, match="invalid store key"):
        store.path("../x", "abc123", "v")


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path)
    store.save("stats", "h", "done", np.zeros(3))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save("stats", "h", "half", np.zeros(3))
    monkeypatch.undo()
    folder = tmp_path / "features" / "stats" / "h"
    assert sorted(p.name for p in folder.iterdir()) == ["done.npy"]  # no partial file, no temp left
    assert store.has("stats", "h", "done") and not store.has("stats", "h", "half")


def test_describe_detects_collisions(tmp_path):
    store = FeatureStore(tmp_path)
    store.describe("stats", "h", {"name": "stats", "version": 1})
    store.describe("stats", "h", {"name": "stats", "version": 1})
    with pytest.raises(InputError, match="different source"):
        store.describe("stats", "h", {"name": "stats", "version": 2})


def test_keyframe_cache_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(384, 500, 3), dtype=np.uint8) for _ in range(3)]
    store = FeatureStore(tmp_path)
    assert not store.has_keyframes("a/b")
    store.save_keyframes("a/b", frames)
    assert [p.name for p in store.keyframe_paths("a/b")] == ["000.png", "001.png", "002.png"]
    back = store.load_keyframes("a/b")
    assert all(np.array_equal(f, g) for f, g in zip(frames, back, strict=True))
    assert not [p for p in store.keyframe_dir("a/b").parent.iterdir() if p.name.startswith(".")]


def test_stats_source_registered_and_meaningful():
    assert "stats" in REGISTRY.source_names()
    source = source_class("stats")()
    assert source.dim == 12 and source.needs == frozenset({"keyframes_384"})
    assert len(source.config_hash()) == 12
    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    s_sharp, s_flat = frame_statistics(sharp), frame_statistics(flat)
    assert s_sharp.shape == (12,) and s_sharp.dtype == np.float32
    assert s_flat[7] == 0 and s_sharp[7] > 0.01  # Laplacian variance: flat frame has none
    assert s_flat[6] == 0 and s_sharp[6] > 0.05  # RMS contrast
    assert np.allclose(s_flat[:3], 128 / 255, atol=1e-5) and s_flat[10] == 0  # grey: no saturation
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    assert frame_statistics(red)[9] > frame_statistics(flat)[9]  # colourfulness


def _write_manifest(tmp_path, names):
    lines = ["video,mos,group"] + [f"{n},{k + 1},{n}" for k, n in enumerate(names)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")


def test_extract_one_decode_skips_bad_videos_and_resumes(tmp_path, monkeypatch, capsys):
    import json

    import rqvqa.pipeline.extract as extract
    from rqvqa.cli import main
    from rqvqa.video.synth import make_video

    (tmp_path / "clips").mkdir()
    make_video(tmp_path / "clips" / "a.mp4", width=96, height=64, n_frames=40, seed=1)
    make_video(tmp_path / "clips" / "b.mp4", width=64, height=96, n_frames=20, seed=2)
    (tmp_path / "clips" / "bad.mp4").write_bytes(b"not a video")
    _write_manifest(tmp_path, ["clips/a.mp4", "clips/bad.mp4", "clips/b.mp4"])
    calls = []
    real = extract._Decode.__call__

    def counting(self, path, needs):
        calls.append((Path(path).name, set(needs)))
        return real(self, path, needs)

    monkeypatch.setattr(extract._Decode, "__call__", counting)
    argv = ["extract", str(tmp_path / "m.csv"), "--sources", "stats", "--store", str(tmp_path / "st")]
    argv += ["--engine", "sequential"]  # the decodes are counted in this process
    assert main([*argv, "--no-progress", "--json"]) == 1  # one bad video: reported, the batch went on
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 2 and [f["video"] for f in report["failed"]] == ["clips/bad.mp4"]
    assert "bad.mp4" in report["failed"][0]["error"]
    assert ("a.mp4", {"keyframes_384"}) in calls and len(calls) == 3  # one decode per video
    store = FeatureStore(tmp_path / "st")
    digest = source_class("stats")().config_hash({"mode": "official"})
    assert report["sources"] == {"stats": digest}
    a = store.load("stats", digest, "clips/a")
    assert a.shape == (8, 12)  # official mode: 8 key-frame rows
    frames = store.load_keyframes("clips/b")
    assert len(frames) == 8 and frames[0].shape == (576, 384, 3)  # portrait: short side 384
    assert np.allclose(a[0], frame_statistics(store.load_keyframes("clips/a")[0]), atol=1e-6)
    # a rerun decodes only what is missing: the bad video again, nothing else
    calls.clear()
    assert main([*argv, "--no-progress", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["skipped"] == 2 and [c[0] for c in calls] == ["bad.mp4"]
    # a lost key-frame folder is rebuilt without recomputing the features' entries
    import shutil

    shutil.rmtree(store.keyframe_dir("clips/a"))
    calls.clear()
    main([*argv, "--no-progress", "--json"])
    capsys.readouterr()
    assert ("a.mp4", {"keyframes_384"}) in calls and store.has_keyframes("clips/a")


def test_extract_rejects_unknown_source(tmp_path, capsys):
    from rqvqa.cli import main

    _write_manifest(tmp_path, ["x.mp4"])
    argv = ["extract", str(tmp_path / "m.csv"), "--sources", "nope", "--store", str(tmp_path / "st")]
    assert main(argv) == 1
    assert "unknown feature source 'nope'" in capsys.readouterr().err


def test_video_id_of_absolute_paths_inside_the_root(tmp_path):
    assert video_id(tmp_path / "test" / "0001.mp4", root=tmp_path) == "test/0001"
    assert video_id(str(tmp_path / "a" / ".." / "b.mp4"), root=tmp_path) == "b"


def test_store_key_depends_on_sampling_mode_and_fragment_seed(tmp_path):
    from typing import ClassVar

    from rqvqa.data.manifest import read_manifest
    from rqvqa.pipeline.extract import extract_manifest
    from rqvqa.source import FeatureSource, Granularity
    from rqvqa.video.synth import make_video

    class FragmentMean(FeatureSource):
        name: ClassVar[str] = "fragmean"
        dim: ClassVar[int] = 3
        granularity: ClassVar[Granularity] = Granularity.VIDEO
        needs: ClassVar[frozenset[str]] = frozenset({"fragments"})

        def extract(self, sample):
            return sample.fragments.reshape(-1, 3).mean(axis=0).astype(np.float32)

    (tmp_path / "clips").mkdir()
    make_video(tmp_path / "clips" / "a.mp4", width=320, height=240, n_frames=40, seed=3)
    _write_manifest(tmp_path, ["clips/a.mp4"])
    manifest = read_manifest(tmp_path / "m.csv")
    store = FeatureStore(tmp_path / "st")
    stats = source_class("stats")()
    keys = {}
    for mode, seed in [("official", 0), ("official", 1), ("full", 0)]:
        report = extract_manifest(
            manifest, [FragmentMean(), stats], store, mode=mode, seed=seed, keyframes=False, progress=False
        )
        assert report.done == 1  # nothing computed under another sampling was reused
        keys[mode, seed] = report.sources
    assert len({k["fragmean"] for k in keys.values()}) == 3
    # stats reads key frames only: the seed does not enter its key, the mode does
    assert keys["official", 0]["stats"] == keys["official", 1]["stats"] != keys["full", 0]["stats"]
    seed0 = store.load("fragmean", keys["official", 0]["fragmean"], "clips/a")
    seed1 = store.load("fragmean", keys["official", 1]["fragmean"], "clips/a")
    assert not np.array_equal(seed0, seed1)


def test_keyframes_after_second_999_are_read_in_order(tmp_path):
    store = FeatureStore(tmp_path)
    frames = [np.full((4, 6, 3), i % 256, np.uint8) for i in range(1002)]
    store.save_keyframes("long", frames, "short384-full")
    names = [p.name for p in store.keyframe_paths("long", "short384-full")]
    assert len(names) == 1002 and names[998:] == ["998.png", "999.png", "1000.png", "1001.png"]


def test_temporary_leftovers_of_killed_runs_are_cleaned(tmp_path):
    store = FeatureStore(tmp_path)
    kept = store.save("stats", "abc", "v", np.zeros((2, 3), np.float32))
    old_file = kept.parent / ".v.npy.x1y2.npy.tmp"
    old_file.write_bytes(b"half")
    old_dir = tmp_path / "keyframes" / "short384-official" / ".w.k3j4.tmp"
    old_dir.mkdir(parents=True)
    (old_dir / "000.png").write_bytes(b"half")
    fresh = kept.parent / ".u.npy.z9.npy.tmp"  # a run may still be writing this one
    fresh.write_bytes(b"busy")
    for path in (old_file, old_dir):
        os.utime(path, (0, 0))
    assert store.clean_temporary() == 2
    assert not old_file.exists() and not old_dir.exists() and fresh.exists() and kept.is_file()


def test_build_sources_passes_weights_dir_and_precision_through_kwargs_constructors(tmp_path):
    """SlowFast, LIQE and FAST-VQA take (*args, **kwargs) and forward them to CheckpointSource: the options
    must still reach them (they used to be dropped, so --weights-dir was ignored)."""
    import torch

    from rqvqa.source import build_sources

    sources = build_sources(
        ["slowfast", "liqe", "fastvqa", "qalign"], "cpu", tmp_path, "bfloat16", qalign_8bit=True
    )
    by_name = {s.name: s for s in sources}
    for name in ("slowfast", "liqe", "fastvqa"):
        assert by_name[name].weights_dir == tmp_path and by_name[name].dtype == torch.bfloat16, name
    qalign = by_name["qalign"]
    assert qalign._weights_dir == tmp_path and qalign.config()["precision"] == "int8"
    per_source = build_sources(["liqe", "fastvqa"], "cpu", None, {"liqe": "float16"})
    assert [s.dtype for s in per_source] == [torch.float16, torch.float32]
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        build_sources(["liqe"], "cpu", None, "float8")


def test_predict_refuses_options_a_model_does_not_take(tmp_path, capsys):
    from rqvqa.cli import main

    assert main(["predict", str(tmp_path / "x.mp4"), "--model", "lite", "--mode", "full"]) == 1
    assert "model lite does not take --mode" in capsys.readouterr().err


def test_predict_maps_source_options_to_each_predictor(tmp_path, monkeypatch):
    import argparse

    import torch

    from rqvqa.api import create_predictor
    from rqvqa.cli import predict as predict_cli

    captured = {}

    def create(name, **options):
        captured[name] = options
        return create_predictor(name, **options)

    monkeypatch.setattr("rqvqa.api.create_predictor", create)
    parser = argparse.ArgumentParser()
    predict_cli.register(parser.add_subparsers())
    common = ["predict", "v.mp4", "--weights-dir", str(tmp_path), "--dtype", "float16"]
    make = predict_cli.predictor_from_args
    qalign = make(parser.parse_args([*common, "--model", "qalign", "--qalign-8bit"]))
    # only the options given are passed (no default device or weights recorded as if chosen)
    expected = {"weights": str(tmp_path), "dtype": "float16", "load_8bit": True}
    assert captured["qalign"] == expected and qalign._dtype is torch.float16
    kvq_argv = [*common, "--model", "rqvqa-kvq", "--mode", "full", "--no-qalign-8bit"]
    monkeypatch.setattr("rqvqa.api.create_predictor", lambda name, **kw: captured.update({name: kw}))
    make(parser.parse_args(kvq_argv))
    assert captured["rqvqa-kvq"] == {
        "weights_dir": str(tmp_path),
        "mode": "full",
        "dtype": "float16",
        "qalign_8bit": False,
    }
    monkeypatch.setattr("rqvqa.api.create_predictor", create)
    monkeypatch.setenv("RQVQA_HOME", str(tmp_path / "home"))  # its own first-use pins
    (tmp_path / "LIQE.pt").write_bytes(b"placeholder")  # found at construction; loaded only to score
    liqe = make(parser.parse_args([*common, "--model", "liqe", "--mode", "official"]))
    assert liqe.source.weights_dir == tmp_path and liqe.source.dtype is torch.float16
    assert liqe.mode == "official"

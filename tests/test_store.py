"""Feature store: keys, atomic writes, resumability, key-frame cache, video ids; the `stats` source."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rqvqa.errors import InputError
from rqvqa.sources.base import available_sources, create_source
from rqvqa.sources.stats import frame_statistics
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
    assert "stats" in available_sources()
    source = create_source("stats")
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

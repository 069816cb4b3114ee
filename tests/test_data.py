"""Manifests, dataset adapters and group-aware splits."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from rqvqa.data import (
    Manifest,
    ManifestRow,
    build_manifest,
    make_splits,
    official_split,
    random_group_split,
    read_manifest,
    write_manifest,
)
from rqvqa.errors import ConfigError, InputError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _kvq_csv(path, n_groups):
    rng = np.random.default_rng(n_groups)
    lines = ["filename,score"] + [
        f"train/{k + 1:04d}.mp4,{s:.9f}" for k, s in enumerate(rng.uniform(1, 5, 7 * n_groups))
    ]
    return _write(path, "\n".join(lines) + "\n")


# ---- manifest format


def test_manifest_round_trip_relative_and_absolute_paths(tmp_path):
    inside = tmp_path / "videos"
    outside = tmp_path.parent / "elsewhere"
    rows = (
        ManifestRow("a/1.mp4", 3.361111111, "g1", "train"),
        ManifestRow(str(outside / "2.mp4"), 1.5, "g1", None),
        ManifestRow("b 3 é.mp4", 0.1 + 0.2, "g2", "test"),
    )
    out = write_manifest(Manifest(rows, inside), tmp_path / "manifest.csv")
    with out.open(newline="") as fh:
        written = list(csv.reader(fh))
    assert written[0] == ["video", "mos", "group", "split"]
    assert written[1][0] == "videos/a/1.mp4"  # under the manifest folder: relative
    assert written[2][0] == str(outside / "2.mp4")  # elsewhere: absolute
    back = read_manifest(out)
    assert [r.mos for r in back] == [r.mos for r in rows]  # floats round-trip exactly
    assert [r.split for r in back] == ["train", None, "test"]
    assert [back.path(k) for k in range(3)] == [
        inside / "a/1.mp4",
        outside / "2.mp4",
        tmp_path / "videos/b 3 é.mp4",
    ]


def test_manifest_without_split_column_and_any_column_order(tmp_path):
    path = _write(tmp_path / "m.csv", "group,video,mos\ns1,x.mp4,2\ns1,y.mp4,3.5\n")
    m = read_manifest(path)
    assert m.videos == ["x.mp4", "y.mp4"] and m.groups == ["s1", "s1"]
    np.testing.assert_array_equal(m.mos, [2.0, 3.5])
    assert m.path(0) == tmp_path / "x.mp4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,mos\nx.mp4,2\n", "line 1: bad header (missing group)"),
        ("video,mos,group,scene\nx.mp4,2,g,s\n", "unknown column scene"),
        ("video,mos,group\nx.mp4,abc,g\n", "line 2: mos is 'abc', expected a number"),
        ("video,mos,group\nx.mp4,,g\n", "line 2: mos is empty"),
        ("video,mos,group\nx.mp4,nan,g\n", "line 2: mos is nan, expected a finite number"),
        ("video,mos,group\nx.mp4,1,g\n\ny.mp4,2\n", "line 4: 2 fields, expected 3"),
        ("video,mos,group\nx.mp4,1,g\nx.mp4,2,h\n", "line 3: x.mp4 repeats line 2"),
        ("video,mos,group\n,1,g\n", "line 2: empty video path"),
        ("video,mos,group\nx.mp4,1,\n", "line 2: empty group"),
        ("video,mos,group\n", "no rows after the header"),
        ("", "empty file"),
    ],
)
def test_bad_manifests_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_manifest_file_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_manifest(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_manifest(tmp_path)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a UTF-8"):
        read_manifest(tmp_path / "binary.csv")
    with pytest.raises(InputError, match="listed twice"):
        Manifest((ManifestRow("a", 1.0, "g"), ManifestRow("a", 2.0, "h")))


# ---- adapters


def test_kvq_adapter_groups_seven_consecutive_rows(tmp_path):
    m = build_manifest("kvq", _kvq_csv(tmp_path / "train_data.csv", 3), tmp_path)
    assert len(m) == 21
    assert m.groups == ["train/0001"] * 7 + ["train/0008"] * 7 + ["train/0015"] * 7
    assert m.videos[7] == "train/0008.mp4" and m.path(0) == tmp_path / "train/0001.mp4"
    assert {r.split for r in m} == {"train"}


def test_kvq_adapter_official_split_from_folders(tmp_path):
    train = _kvq_csv(tmp_path / "train_data.csv", 2)
    val = _write(
        tmp_path / "truth.csv", "filename,score\n" + "".join(f"val/{k:04d}.mp4,3.{k}\n" for k in range(7))
    )
    m = build_manifest("kvq", [train, val], tmp_path)
    assert [r.split for r in m] == ["train"] * 14 + ["val"] * 7
    assert m.groups[14:] == ["val/0000"] * 7
    split = official_split(m, test="val")
    assert split.train == tuple(range(14)) and split.test == tuple(range(14, 21))


def test_kvq_adapter_rejects_incomplete_groups_and_blank_scores(tmp_path):
    path = _write(tmp_path / "t.csv", "filename,score\n" + "".join(f"v{k}.mp4,3\n" for k in range(8)))
    with pytest.raises(InputError, match="8 videos is not a multiple of 7"):
        build_manifest("kvq", path, tmp_path)
    # Like RQ-VQA's test_data.csv: names without scores.
    path = _write(tmp_path / "test_data.csv", "filename,score\ntest/0001.mp4,\n")
    with pytest.raises(InputError, match="line 2: score is empty"):
        build_manifest("kvq", path, tmp_path)


def test_konvid_metadata_csv_from_shared_data(shared_data):
    path = shared_data / "konvid1k" / "metadata.csv"
    m = build_manifest("konvid1k", path, "/videos/konvid")
    with path.open(newline="") as fh:
        reference = list(csv.DictReader(fh))
    assert len(m) == len(reference) == 1200
    assert m.videos == [f"{r['flickr_id']}.mp4" for r in reference]
    np.testing.assert_array_equal(m.mos, [float(r["mos"]) for r in reference])
    assert len(set(m.groups)) == len(m)  # every video is its own group
    assert m.mos.min() >= 1.0 and m.mos.max() <= 5.0


def test_labels_txt_format_for_konvid_livevqc_youtube(tmp_path):
    text = "KoNViD_1k_videos/4542323058.mp4, 8.008, 29.97002997002997, 3.22\n"
    text += "KoNViD_1k_videos/1.mp4, 8.0, 30, 1.5\n"
    m = build_manifest("konvid1k", _write(tmp_path / "labels.txt", text), tmp_path)
    assert m.videos == ["KoNViD_1k_videos/4542323058.mp4", "KoNViD_1k_videos/1.mp4"]
    np.testing.assert_array_equal(m.mos, [3.22, 1.5])
    vqc = build_manifest(
        "LIVE_VQC", _write(tmp_path / "vqc.txt", "Video/A001.mp4, 10.002367, 30.0, 80.232\n"), "."
    )
    assert vqc.videos == ["Video/A001.mp4"] and vqc[0].mos == 80.232
    ugc = _write(tmp_path / "ugc.txt", "YouTubeUGC/Gaming_720P-25aa.mkv, -1, -1, 3.25\nx.mkv, -1, -1, 4\n")
    assert build_manifest("youtube-ugc", ugc, ".").videos == ["YouTubeUGC/Gaming_720P-25aa.mkv", "x.mkv"]
    with pytest.raises(InputError, match="line 2: 3 fields"):
        build_manifest("konvid1k", _write(tmp_path / "bad.txt", "a.mp4, 8, 30, 3.1\nb.mp4, 8, 30\n"), ".")


def test_videval_metadata_formats(tmp_path):
    vqc = _write(
        tmp_path / "LIVE_VQC_metadata.csv",
        "File,MOS,width,height,pixfmt,framerate,nb_frames,bitdepth,bitrate\n"
        "A001.mp4,80.232,1920,1080,yuvj420p,29.99,300,8,19924412\nB001.mp4,27.2485,1280,720,yuv420p,19.56,196,8,1\n",
    )
    assert build_manifest("live-vqc", vqc, ".").videos == ["A001.mp4", "B001.mp4"]
    header = "vid,category,resolution,x_Subjects,MOSFull,MOSChunk00,MOSChunk05,MOSChunk10,stdFull,stdChunk00,"
    header += "stdChunk05,stdChunk10,width,height,pixfmt,framerate,nb_frames,bitdepth,bitrate\n"
    row = "Animation_1080P-01b3,Animation,1080,125,3.649,3.604,3.721,3.338,0.468,0.574,0.61,0.618,1920,1080,"
    row += "yuv420p,29.97,NaN,NaN,NaN\n"
    ugc = _write(tmp_path / "YOUTUBE_UGC_metadata.csv", header + row)
    m = build_manifest("youtube-ugc", ugc, ".")
    assert m.videos == ["Animation_1080P-01b3.mkv"] and m[0].mos == 3.649  # MOSFull, not a chunk MOS
    assert build_manifest("youtube-ugc", ugc, ".", ext=".mp4").videos == ["Animation_1080P-01b3.mp4"]


def test_lsvq_official_lists_give_the_split_column(tmp_path):
    train = _write(
        tmp_path / "train_labels.txt", "yfcc-batch1/747.mp4, -1, -1, 67.75\nia-batch1/a.mp4, -1, -1, 50\n"
    )
    test = _write(tmp_path / "labels_test.txt", "yfcc-batch2/1.mp4, -1, -1, 40.5\n")
    hd = _write(tmp_path / "labels_1080p.txt", "yfcc-batch3/9.mp4, -1, -1, 71\n")
    m = build_manifest("lsvq", [train, test, hd], tmp_path / "LSVQ")
    assert [r.split for r in m] == ["train", "train", "test", "test_1080p"]
    split = official_split(m)
    assert split.train == (0, 1) and split.test == (2,)
    assert official_split(m, test="test_1080p").test == (3,)
    with pytest.raises(InputError, match="listed twice"):
        build_manifest("lsvq", [train, _write(tmp_path / "x_test.txt", "ia-batch1/a.mp4, -1, -1, 50\n")], ".")


def test_lsvq_simplevqa_csvs(tmp_path):
    whole = _write(
        tmp_path / "LSVQ_whole_train.csv",
        "name,p1,p2,p3,height,width,mos_p1,mos_p2,mos_p3,mos,frame_number,is_test,is_valid\n"
        "yfcc-batch1/747,1,2,3,540,960,1,2,3,67.75,300,False,False\n"
        "yfcc-batch1/748,1,2,3,540,960,1,2,3,55.0,300,True,False\n",
    )
    hd = _write(
        tmp_path / "LSVQ_whole_test_1080p.csv",
        "name,p1,p2,p3,height,width,mos_p1,mos_p2,mos_p3,mos,frame_number,is_valid\n"
        "yfcc-batch9/1,1,2,3,1080,1920,1,2,3,70.5,300,False\n",
    )
    m = build_manifest("lsvq", [whole, hd], ".")
    assert m.videos == ["yfcc-batch1/747.mp4", "yfcc-batch1/748.mp4", "yfcc-batch9/1.mp4"]
    assert [r.split for r in m] == ["train", "test", "test_1080p"]
    with pytest.raises(InputError, match="cannot tell the LSVQ split"):
        build_manifest("lsvq", _write(tmp_path / "lsvq.txt", "a.mp4, -1, -1, 5\n"), ".")


@pytest.mark.parametrize("dataset", ["taolive", "live-wc"])
def test_scene_datasets(tmp_path, dataset):
    path = _write(
        tmp_path / "labels.csv",
        "filename,score,scene\ns1_crf20.mp4,3.5,s1\ns1_crf30.mp4,2.5,s1\nq.mp4,4,s2\n",
    )
    m = build_manifest(dataset, path, tmp_path)
    assert m.groups == ["s1", "s1", "s2"] and m.videos[2] == "q.mp4"
    with pytest.raises(InputError, match="filename,score,scene"):
        build_manifest(dataset, _write(tmp_path / "noscene.csv", "filename,score\na.mp4,3\n"), tmp_path)
    with pytest.raises(InputError, match="line 3: empty scene id"):
        build_manifest(
            dataset, _write(tmp_path / "blank.csv", "filename,score,scene\na.mp4,3,s\nb.mp4,3,\n"), "."
        )


def test_unknown_dataset_and_file_count():
    with pytest.raises(ConfigError, match="unknown dataset"):
        build_manifest("imagenet", "x.csv", ".")
    with pytest.raises(ConfigError, match="exactly one label file"):
        build_manifest("konvid1k", ["a.csv", "b.csv"], ".")


# ---- splits


def _official_rqvqa_kvq_split(seed, length=418):
    """The procedure of RQ-VQA data_loader.py (spec: rqvqa.md section 6), written out for comparison."""
    np.random.seed(seed)
    order = np.random.permutation(length)
    train = [g * 7 + k for g in order[: int(length * 0.8)] for k in range(7)]
    val = [g * 7 + k for g in order[int(length * 0.8) :] for k in range(7)]
    return train, val


def test_kvq_splits_reproduce_rqvqa_exactly(tmp_path):
    m = build_manifest("kvq", _kvq_csv(tmp_path / "train_data.csv", 418), tmp_path)
    splits = make_splits(m, 10)
    assert [s.seed for s in splits] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    state = np.random.get_state()
    try:
        for s in splits:
            train, val = _official_rqvqa_kvq_split(s.seed)
            assert list(s.train) == train and list(s.test) == val
            assert (len(s.train), len(s.test)) == (2338, 588)
    finally:
        np.random.set_state(state)


def test_splits_never_separate_groups_over_many_seeds():
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 6, size=53)
    rows = [
        ManifestRow(f"g{g}_{k}.mp4", float(rng.uniform(1, 5)), f"g{g}")
        for g, n in enumerate(sizes)
        for k in range(n)
    ]
    order = rng.permutation(len(rows))  # groups need not be contiguous
    m = Manifest(tuple(rows[i] for i in order))
    n_train_groups = int(53 * 0.8)
    for split in make_splits(m, 200, seed_base=7):
        train, test = set(split.train), set(split.test)
        assert len(train) == len(split.train) and not train & test
        assert train | test == set(range(len(m)))
        train_groups = {m[i].group for i in train}
        assert not train_groups & {m[i].group for i in test}
        assert len(train_groups) == n_train_groups
    assert make_splits(m, 3) == make_splits(m, 3)  # deterministic
    assert make_splits(m, 2)[0] != make_splits(m, 2)[1]


def test_split_seed_rules_and_limits():
    m = Manifest(tuple(ManifestRow(f"{k}.mp4", float(k), f"{k}") for k in range(10)))
    assert [s.seed for s in make_splits(m, 3, seed_base=0)] == [0, 1, 2]  # RQ-VQA: random_seed 0 -> seed = i
    assert len(random_group_split(m, seed=5, ratio=0.7).train) == 7
    with pytest.raises(ConfigError):
        random_group_split(m, seed=1, ratio=1.0)
    with pytest.raises(ConfigError):
        make_splits(m, 0)
    tiny = Manifest((ManifestRow("a", 1.0, "g"), ManifestRow("b", 2.0, "g")))
    with pytest.raises(InputError, match="1 groups cannot be split"):
        make_splits(tiny, 1)
    with pytest.raises(InputError, match="no official split"):
        official_split(m)

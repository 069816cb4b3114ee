"""`benchmark-features --test FEATURES MOS` (cross-dataset) and `--mos-column` on small synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rqvqa.benchmark import load_mos, run_benchmark
from rqvqa.errors import InputError


def _dataset(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4)) + shift
    y = 3 + 0.8 * np.tanh(x[:, 0] - shift) - 0.3 * (x[:, 1] - shift)
    return x, y


def test_cross_dataset_trains_on_one_and_tests_on_the_other():
    rng = np.random.default_rng(0)
    x, y = _dataset(rng, 60)
    xt, yt = _dataset(rng, 40)
    result = run_benchmark(x, y, n_splits=1, test=(xt, yt))
    assert result["n_videos"] == 60 and result["n_test_videos"] == 40
    assert result["median"]["SRCC"] > 0.8  # same relation in both sets: it transfers
    # a test set where the relation is reversed scores a negative SRCC: the test set is really used
    flipped = run_benchmark(x, y, n_splits=1, test=(xt, 6 - yt))
    assert flipped["median"]["SRCC"] == pytest.approx(-result["median"]["SRCC"])
    with pytest.raises(InputError, match="columns"):
        run_benchmark(x, y, n_splits=1, test=(xt[:, :3], yt))


def test_mos_column_reads_youtube_ugc_style_metadata(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("vid,MOSFull,MOSChunk\na,3.5,3.1\nb,4.25,4.0\n")
    assert load_mos(meta).tolist() == [3.5, 4.25]  # YouTube-UGC's published layout: MOSFull
    assert load_mos(meta, "MOSChunk").tolist() == [3.1, 4.0]
    with pytest.raises(InputError, match="no column 'MOS'.*MOSFull"):
        load_mos(meta, "MOS")
    other = tmp_path / "other.csv"
    other.write_text("vid,quality,rating\na,3.5,3.1\nb,4.25,4.0\n")
    with pytest.raises(InputError, match="no MOS column .*name one with --mos-column"):
        load_mos(other)  # two numeric columns and no MOS name: ambiguous without --mos-column


def test_cli_cross_and_mos_column(tmp_path, capsys):
    from rqvqa.cli import main

    rng = np.random.default_rng(1)
    x, y = _dataset(rng, 50)
    xt, yt = _dataset(rng, 30)
    np.save(tmp_path / "train.npy", x)
    np.save(tmp_path / "test.npy", xt)
    for name, mos in (("train.csv", y), ("test.csv", yt)):
        (tmp_path / name).write_text("id,MOSFull\n" + "".join(f"{i},{m}\n" for i, m in enumerate(mos)))
    argv = ["benchmark-features", str(tmp_path / "train.npy"), str(tmp_path / "train.csv"), "--splits", "1"]
    argv += ["--test", str(tmp_path / "test.npy"), str(tmp_path / "test.csv"), "--mos-column", "MOSFull"]
    assert main([*argv, "--jobs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_test_videos"] == 30 and out["median"]["SRCC"] > 0.8


def test_cli_reads_each_label_file_by_its_own_layout(tmp_path, capsys):
    """KoNViD-1k -> YouTube-UGC: the training labels in a `mos` column, the test labels in `MOSFull`; an
    override per file (`--mos-column` for MOS_FILE, `--test-mos-column` for the test one)."""
    from rqvqa.cli import main

    rng = np.random.default_rng(2)
    x, y = _dataset(rng, 50)
    xt, yt = _dataset(rng, 30)
    np.save(tmp_path / "konvid.npy", x)
    np.save(tmp_path / "youtube.npy", xt)
    (tmp_path / "metadata.csv").write_text("flickr_id,mos\n" + "".join(f"{i},{m}\n" for i, m in enumerate(y)))
    (tmp_path / "ugc.csv").write_text(
        "vid,MOSFull,MOSChunk\n" + "".join(f"v{i},{m},{6 - m}\n" for i, m in enumerate(yt))
    )
    base = [
        "benchmark-features",
        str(tmp_path / "konvid.npy"),
        str(tmp_path / "metadata.csv"),
        "--splits",
        "1",
    ]
    base += ["--test", str(tmp_path / "youtube.npy"), str(tmp_path / "ugc.csv"), "--jobs", "1", "--json"]
    assert main(base) == 0
    by_layout = json.loads(capsys.readouterr().out)["median"]["SRCC"]
    assert by_layout > 0.8
    # the test file's own override: MOSChunk here holds 6 - MOS, so the SRCC flips
    assert main([*base, "--test-mos-column", "MOSChunk"]) == 0
    assert json.loads(capsys.readouterr().out)["median"]["SRCC"] == pytest.approx(-by_layout)
    # --mos-column names MOS_FILE's column only (it used to be required of the test file too)
    assert main([*base, "--mos-column", "mos"]) == 0
    assert json.loads(capsys.readouterr().out)["median"]["SRCC"] == by_layout
    assert main([*base, "--mos-column", "MOSFull"]) == 1
    assert f"{tmp_path / 'metadata.csv'}: no column 'MOSFull'" in capsys.readouterr().err


def test_grid_search_with_shared_kernels_selects_as_a_plain_rbf_grid():
    """One Gram matrix per gamma (`kernel="precomputed"`) gives the predictions of a plain RBF SVR refitted
    for every (C, gamma), hence the same selection; processes over the grid change nothing; the progress
    callback counts every grid step."""
    import math

    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import SVR

    from rqvqa.benchmark import C_GRID, GAMMA_GRID, STEPS_PER_SPLIT, select_parameters
    from rqvqa.metrics import performance

    rng = np.random.default_rng(2)
    x, y = _dataset(rng, 80)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, random_state=math.ceil(6.6 * 1))
    scaler = MinMaxScaler().fit(x_fit)
    best = (math.inf, None)
    for c in C_GRID:
        for gamma in GAMMA_GRID:
            pred = SVR(kernel="rbf", C=c, gamma=gamma).fit(scaler.transform(x_fit), y_fit)
            pred = pred.predict(scaler.transform(x_val))
            z = (pred - pred.mean()) / pred.std() if pred.std() > 0 else pred
            rmse = performance(z, y_val, fit="logistic4")["RMSE"]
            if rmse < best[0]:
                best = (rmse, (float(c), float(gamma)))
    steps = []
    assert select_parameters(1, x, y, progress=steps.append) == best[1]
    assert steps == [1] * STEPS_PER_SPLIT
    assert select_parameters(1, x, y, n_jobs=2) == best[1]
    done = []
    run_benchmark(x, y, n_splits=1, n_jobs=2, progress=done.append)
    assert sum(done) == STEPS_PER_SPLIT

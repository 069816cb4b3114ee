"""BRISQUE / NIQE ports: MATLAB primitives, feature properties, the official KoNViD-1k row, the benchmark."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic import nss
from rqvqa.families.classic.brisque import N_FEATURES, brisque_features, brisque_score
from rqvqa.families.classic.frames import protocol_frames, subsample
from rqvqa.families.classic.matlab import filter2_same, fspecial_gaussian, imresize
from rqvqa.families.classic.matlab import gaussian_filter as mscn_filter
from rqvqa.families.classic.niqe import niqe_block_features, niqe_score
from rqvqa.families.classic.nss import aggd_fit, ggd_fit, shifted_product

OFFICIAL_ID = 5115335471


def natural_image(h: int = 192, w: int = 256, seed: int = 0) -> np.ndarray:
    """A 1/f ("pink") greyscale image on 0-255: a natural-scene-like spectrum, as NSS models expect."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f
    img = np.real(np.fft.ifft2(spectrum))
    img = (img - img.min()) / (img.max() - img.min())
    return 20 + 215 * img


# ------------------------------------------------------------------------------------ MATLAB primitives


def test_imresize_half_matches_matlab_geometry():
    # Output size ceil(n/2); for a linear ramp the symmetric antialiased cubic kernel reproduces the ramp at
    # MATLAB's sample positions u = 2x - 0.5 (1-based), away from the mirrored borders.
    ramp = np.tile(np.arange(1, 42, dtype=np.float64), (9, 1))
    out = imresize(ramp, 0.5)
    assert out.shape == (5, 21)
    x = np.arange(1, 22)
    np.testing.assert_allclose(out[2, 3:-3], (2 * x - 0.5)[3:-3], atol=1e-9)
    np.testing.assert_allclose(imresize(np.full((7, 10), 42.0), 0.5), 42.0, atol=1e-12)


def test_ggd_and_aggd_fits_recover_gaussian_shape():
    rng = np.random.default_rng(1)
    v = rng.normal(0, 2.0, 200_000)
    shape, sigma = ggd_fit(v)
    assert abs(shape - 2.0) < 0.05 and abs(sigma - 2.0) < 0.02
    # An AGGD puts mass proportional to each side's scale: left sigma 1 with probability 1/3, right sigma 2.
    left_side = rng.random(v.size) < 1 / 3
    a, left, right = aggd_fit(np.where(left_side, -np.abs(v) * 0.5, np.abs(v)))
    assert abs(a - 2.0) < 0.1 and abs(left - 1.0) < 0.02 and abs(right - 2.0) < 0.03
    # shapes live on the official 0.2:0.001:10 grid
    assert abs(shape * 1000 - round(shape * 1000)) < 1e-6


def test_fspecial_gaussian_and_filter2_semantics():
    h = fspecial_gaussian(7, 7 / 6)
    assert h.shape == (7, 7) and abs(h.sum() - 1) < 1e-15 and np.array_equal(h, h.T)
    # centre 1 / (1 + 2 (e^-0.367 + e^-1.469 + e^-3.306))^2; the window is the outer product up to rounding
    np.testing.assert_allclose(h[3, 3], 0.117396, atol=1e-6)
    np.testing.assert_allclose(h, np.outer(h[3] / h[3].sum(), h[3] / h[3].sum()), rtol=1e-14, atol=0)
    # filter2(h, X, 'same') is one 2-D correlation with zero borders: bit-identical to a per-pixel loop
    # (scipy.ndimage.correlate), on integer frames and on arbitrary doubles (the second BRISQUE scale).
    rng = np.random.default_rng(3)
    for image in (rng.integers(0, 256, (37, 53)).astype(np.float64), rng.normal(100, 40, (40, 31))):
        from scipy.ndimage import correlate

        assert np.array_equal(filter2_same(image, h), correlate(image, h, mode="constant", cval=0.0))
        assert np.array_equal(mscn_filter(image, "zero"), filter2_same(image, h))
    with pytest.raises(ValueError, match="border"):
        mscn_filter(np.zeros((8, 8)), "wrap")


def test_grid_lookup_equals_full_argmin():
    rng = np.random.default_rng(4)
    rho = rng.uniform(0.5, 60.0, 2000)
    full = np.argmin(np.abs(rho[:, None] - nss._GGD_RATIO[None, :]), axis=1)
    assert np.array_equal(nss._nearest_grid_index(nss._GGD_RATIO, rho, squared=False), full)
    r = rng.uniform(0.01, 1.5, 2000)
    full = np.argmin((nss._AGGD_RATIO[None, :] - r[:, None]) ** 2, axis=1)
    assert np.array_equal(nss._nearest_grid_index(nss._AGGD_RATIO, r, squared=True), full)


def test_shifted_product_is_circshift_product():
    s = np.random.default_rng(5).normal(size=(2, 6, 9))
    out = np.empty_like(s)
    for shift in nss.SHIFTS + nss.NIQE_SHIFTS:
        expected = s * np.roll(s, shift, axis=(1, 2))
        assert np.array_equal(shifted_product(s, shift, out), expected)
    # a single C-ordered plane takes the flat-roll path: every shift, wrapped ones and those past the size too
    for h, w in ((1, 1), (1, 5), (4, 1), (5, 7), (8, 3)):
        plane = np.random.default_rng(h * w).normal(size=(h, w))
        for shift in itertools.product(range(-h - 1, h + 2), range(-w - 1, w + 2)):
            expected = plane * np.roll(plane, shift, axis=(0, 1))
            assert np.array_equal(shifted_product(plane, shift, np.empty_like(plane)), expected), shift


def test_fits_never_divide_by_zero():
    with pytest.raises(UnmeasurableError, match="cannot fit the"):
        ggd_fit(np.zeros(100))
    for vec in (np.zeros(100), np.abs(np.random.default_rng(0).normal(size=100)), -np.ones(10)):
        with pytest.raises(UnmeasurableError, match="cannot fit the"):
            aggd_fit(vec)
    shape, left, right = aggd_fit(np.array([-1.0, 0.0, 2.0, 0.5]))
    assert all(np.isfinite([shape, left, right])) and left == 1.0


# ------------------------------------------------------------------------------------ flat content


@pytest.mark.parametrize("value", [0.0, 16.0, 235.0])
def test_brisque_flat_frame_is_unmeasurable(value):
    with pytest.raises(UnmeasurableError, match="flat frame"):
        brisque_score(np.full((192, 192), value))


def test_niqe_flat_frame_is_unmeasurable():
    with pytest.raises(UnmeasurableError, match="every 96x96 block is flat"):
        niqe_score(np.zeros((192, 288)))


def test_niqe_leaves_flat_blocks_out():
    img = natural_image(192, 384)
    full = niqe_block_features(img)
    assert full.shape == (8, 36)
    img[96:, 288:] = 16.0  # one perfectly flat block (row 1, column 3): the last in column-major order
    feats = niqe_block_features(img)
    assert feats.shape == (7, 36) and np.all(np.isfinite(feats))
    # blocks far from the flat one keep their features (the filters and the resize are local)
    np.testing.assert_allclose(feats[:4], full[:4], rtol=1e-12, atol=1e-12)
    assert np.isfinite(niqe_score(img))


@pytest.mark.parametrize("shape", [(96, 96), (120, 160)])
def test_niqe_single_block_uses_zero_covariance(shape):
    # one 96x96 block: MATLAB's cov of one observation is 0, so the score is finite (numpy's would be NaN)
    score = niqe_score(natural_image(*shape))
    assert np.isfinite(score) and score > 0


def test_large_frames_are_measured_in_bands_with_the_same_values(monkeypatch):
    """Frames over `STRIP_PIXELS` go through `imresize`, BRISQUE and NIQE a band of rows at a time (issue 19,
    item 7): small bands here, against the whole frame."""
    from rqvqa.families.classic import matlab

    img = np.round(natural_image(400, 384, seed=3))
    whole = (imresize(img, 0.5), brisque_features(img), niqe_block_features(img))
    monkeypatch.setattr(matlab, "STRIP_PIXELS", 0)
    monkeypatch.setattr(matlab, "_BAND_PIXELS", 96 * 192)
    # several bands at every step: BRISQUE's two scales, NIQE's two scales (whole blocks), the resize
    assert [len(matlab.row_bands(*a)) for a in ((400, 384), (200, 192), (384, 384, 96), (192, 192, 48))] == [
        9,
        3,
        4,
        2,
    ]
    banded = (imresize(img, 0.5), brisque_features(img), niqe_block_features(img))
    np.testing.assert_array_equal(banded[0], whole[0])  # each output row sums the same taps in the same order
    np.testing.assert_array_equal(banded[2], whole[2])  # every block's features are its own
    # BRISQUE's sums over the whole frame add up band by band: equal up to rounding
    np.testing.assert_allclose(banded[1], whole[1], rtol=1e-12, atol=0)
    # the uint8 frame (as decoded) gives the same values as its float64 copy
    np.testing.assert_array_equal(brisque_features(img.astype(np.uint8)), banded[1])


@pytest.mark.slow
def test_an_8k_frame_stays_within_a_few_hundred_megabytes():
    """One 8K luma frame (7680x4320, 265 MB as float64): BRISQUE and NIQE peak far below the 1.6 GB that
    whole-frame float64 temporaries took."""
    import tracemalloc

    rng = np.random.default_rng(0)
    gray = np.repeat(np.repeat(rng.integers(16, 236, (540, 960), dtype=np.uint8), 8, 0), 8, 1)
    gray[::2] += 3  # fine detail, so no block is flat
    for fn in (brisque_features, niqe_score):
        tracemalloc.start()
        value = fn(gray)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert np.all(np.isfinite(value))
        assert peak < 400e6, (fn.__name__, peak / 1e6)


# ------------------------------------------------------------------------------------ image properties


def test_brisque_features_shape_and_grid():
    f = brisque_features(natural_image())
    assert f.shape == (N_FEATURES,) and np.all(np.isfinite(f))
    shapes = f[[0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    np.testing.assert_allclose(shapes * 1000, np.round(shapes * 1000), atol=1e-6)
    assert np.all(f[[1, 4, 5, 8, 9, 19, 22, 23]] > 0)  # variances


def test_brisque_score_rises_with_blur_and_noise():
    img = natural_image()
    rng = np.random.default_rng(0)
    clean = brisque_score(img)
    assert clean < brisque_score(gaussian_filter(img, 1.0)) < brisque_score(gaussian_filter(img, 2.5))
    noisy = [brisque_score(img + rng.normal(0, s, img.shape)) for s in (5.0, 20.0)]
    assert clean < noisy[1] and noisy[0] < noisy[1]


def test_niqe_rises_with_blur_and_noise():
    img = natural_image(288, 384)
    rng = np.random.default_rng(0)
    clean = niqe_score(img)
    assert clean < niqe_score(gaussian_filter(img, 1.5)) < niqe_score(gaussian_filter(img, 3.0))
    assert clean < niqe_score(img + rng.normal(0, 25.0, img.shape))


def test_niqe_rejects_tiny_and_colour_input():
    with pytest.raises(UnmeasurableError, match="frame 200x50 is below NIQE's minimum 96x96"):
        niqe_score(natural_image(50, 200))
    with pytest.raises(ValueError, match="2-D"):
        brisque_features(np.zeros((32, 32, 3)))


# ------------------------------------------------------------------------------------ frame protocol


def test_protocol_frames():
    assert protocol_frames(240, 30000 / 1001) == [14, 44, 74, 104, 134, 164, 194, 224]
    assert protocol_frames(200, 25.0) == [11, 36, 61, 86, 111, 136, 161, 186]
    assert protocol_frames(59, 30.0) == [14]  # the incomplete second is not used
    assert protocol_frames(10, 30.0) == [5]  # shorter than a second: the middle frame
    frames = protocol_frames(240, 29.97)
    assert subsample(frames, 3) == [14, 134, 224] and subsample(frames, None) == frames


# ------------------------------------------------------------------------------------ official targets


def _official_row(shared_data):
    import csv

    from scipy.io import loadmat

    video = shared_data / "videos" / f"{OFFICIAL_ID}.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    with open(shared_data / "konvid1k" / "metadata.csv", newline="") as fh:
        ids = [int(r["flickr_id"]) for r in csv.DictReader(fh)]
    row = ids.index(OFFICIAL_ID)
    feats = loadmat(str(shared_data / "konvid1k" / "brisque_feats.mat"))["feats_mat"][row]
    niqe = float(loadmat(str(shared_data / "konvid1k" / "niqe_scores.mat"))["y_pred"][0, row])
    return video, feats, niqe


@pytest.mark.slow
def test_video_features_match_official_konvid_row(shared_data):
    from rqvqa.families.classic.frames import video_features

    video, official, official_niqe = _official_row(shared_data)
    vf = video_features(video, brisque=True, niqe=True)
    assert vf.frame_indices == [14, 44, 74, 104, 134, 164, 194, 224]
    ours = vf.brisque_video
    # With MATLAB's 2-D filter2 every feature is within 0.6 % (largest: feature 33, -0.02088 vs -0.02100);
    # the two-pass separable filter was 7.4 % off (feature 17), so 2 % pins the filter2 semantics.
    ok = np.abs(ours - official) <= 0.02 * np.abs(official)
    assert ok.all(), f"features off: {np.where(~ok)[0]} ours {ours[~ok]} official {official[~ok]}"
    # The GGD fits of both scales are reproduced exactly (shape on the 0.001 grid, variance to 1e-4).
    np.testing.assert_allclose(ours[[0, 1, 18, 19]], official[[0, 1, 18, 19]], atol=1e-4)
    assert abs(vf.niqe_video - official_niqe) <= 0.05 * official_niqe


# ------------------------------------------------------------------------------------ benchmark


def test_benchmark_cli_on_small_csv(tmp_path, capsys):
    from rqvqa.cli import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    mos = 3 + x[:, 0] - 0.5 * x[:, 1] + rng.normal(0, 0.2, 60)
    np.savetxt(tmp_path / "f.csv", x, delimiter=",")
    (tmp_path / "mos.csv").write_text("name,mos\n" + "".join(f"v{i},{m}\n" for i, m in enumerate(mos)))
    assert (
        main(
            [
                "benchmark-features",
                str(tmp_path / "f.csv"),
                str(tmp_path / "mos.csv"),
                "--splits",
                "2",
                "--jobs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["n_videos"] == 60 and out["n_splits"] == 2 and len(out["splits"]) == 2
    assert out["median"]["SRCC"] > 0.8  # the signal is strong: an SVR must find it


def test_benchmark_cli_reports_bad_input(tmp_path, capsys):
    from rqvqa.cli import main

    np.save(tmp_path / "f.npy", np.zeros((20, 2)))
    (tmp_path / "mos.csv").write_text("a,b\n1,2\n")
    assert main(["benchmark-features", str(tmp_path / "f.npy"), str(tmp_path / "missing.csv")]) == 1
    assert "MOS file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_on_official_brisque_features(shared_data):
    from rqvqa.benchmark import evaluate_split, load_features, load_mos

    x = load_features(shared_data / "konvid1k" / "brisque_feats.mat")
    y = load_mos(shared_data / "konvid1k" / "metadata.csv")
    assert x.shape == (1200, 36) and y.shape == (1200,)
    row = evaluate_split(1, x, y)
    # One split of the published 0.6567 (0.0351) median: well inside +-4 std.
    assert 0.52 < row["SRCC"] < 0.80 and 0.52 < row["PLCC"] < 0.80
    assert row["C"] in 2.0 ** np.arange(1, 11) and row["gamma"] in 2.0 ** np.arange(-8, 2)

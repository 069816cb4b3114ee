"""VIDEVAL in Python: MATLAB primitives, the released models (golden), the features of the shared KoNViD-1k
video against the official rows (golden, slow), the predictors and `rqvqa features`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from rqvqa.errors import UnmeasurableError
from rqvqa.families.classic.nss import shifted_product
from rqvqa.families.videval import frame, ops, tlvqm
from rqvqa.families.videval.extract import AVG_POOL, FEATURE_NAMES, STD_POOL, pool
from rqvqa.families.videval.model import OOD_RANGE, released_model

SHARED_VIDEO = "5115335471"


def _num(cell: str) -> float:
    # the golden CSV writes numbers as `np.float64(x)`
    return float(cell.removeprefix("np.float64(").removesuffix(")"))


@pytest.mark.golden
@pytest.mark.parametrize(
    ("feature_set", "mat", "column"),
    [
        ("videval", "konvid1k/videval_feats.mat", "videval"),
        ("videval-light", "videval/konvid1k_videval_light720_6fps_feats.mat", "videval_light720_6fps"),
    ],
)
def test_released_models_reproduce_official_predictions(shared_data, feature_set, mat, column):
    from scipy.io import loadmat

    x = loadmat(str(shared_data / mat))["feats_mat"][:50]
    with open(shared_data / "videval" / "official_predictions_konvid_first50.csv") as fh:
        rows = list(csv.DictReader(fh))
    model = released_model(feature_set)
    np.testing.assert_allclose(
        model.predict_raw(x), [_num(r[f"{column}_raw"]) for r in rows], rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(model.predict(x), [_num(r[f"{column}_mos"]) for r in rows], rtol=0, atol=1e-9)
    # the official rows are the training data: inside the training range, never flagged
    assert not any(model.ood(row)["ood"] for row in x)


def test_ood_flags_features_outside_the_training_range():
    model = released_model("videval-light")
    inside = (np.asarray(model.svr.center) + 0.5 * np.asarray(model.svr.width)).copy()  # mid-range
    out = model.ood(inside)
    assert out["ood"] is False and out["ood_distance"] == 0.0 and out["ood_feature"] is None
    far = inside.copy()
    far[7] = model.svr.center[7] + (1 + 2 * OOD_RANGE) * model.svr.width[7]  # 2 ranges above the top
    flagged = model.ood(far, FEATURE_NAMES)
    assert flagged["ood"] is True and flagged["ood_feature"] == FEATURE_NAMES[7]
    assert flagged["ood_distance"] == pytest.approx(2 * OOD_RANGE)
    assert np.isfinite(model.predict(np.full(60, np.nan))).all()  # NaN -> 0, as the release


def test_uint8_ycbcr2rgb_rounds_every_input_as_the_plain_matrix_product():
    """The uint8 `ycbcr2rgb` sums its products in OpenCV's order. That is safe only because no integer input
    lies near a rounding tie: checked for all 256^3 inputs against the plain matrix product, a Y plane at a
    time."""
    u, v = np.meshgrid(np.arange(256.0), np.arange(256.0), indexing="ij")
    matrix = 255.0 * ops._T601_INV
    nearest_tie = np.inf
    for y in range(256):
        yuv = np.stack([np.full_like(u, y), u, v], axis=-1)
        exact = (yuv - ops._OFFSET601) @ matrix.T
        nearest_tie = min(nearest_tie, float(np.abs(np.abs(exact - np.floor(exact)) - 0.5).min()))
        got = ops.ycbcr2rgb(yuv, uint8=True)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, np.clip(np.round(exact), 0, 255), err_msg=f"Y = {y}")
    # far beyond the error of any order of three double-precision products of values up to about 600
    assert nearest_tie > 1e-8


def test_matlab_primitives():
    g = ops.fspecial_gaussian(7, 7 / 6)
    assert g.shape == (7, 7) and g.sum() == pytest.approx(1.0) and g[3, 3] == g.max()
    log5 = ops.fspecial_log(5, 0.5)
    assert log5.sum() == pytest.approx(0.0, abs=1e-12) and log5[2, 2] < 0  # centre of the LoG is negative
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=5000)
    assert ops.skewness(x) == pytest.approx(stats.skew(x))
    assert ops.kurtosis(x) == pytest.approx(stats.kurtosis(x, fisher=False))
    # BT.601 studio swing: white and black, uint8 path rounds and saturates
    yuv = np.array([[[235.0, 128.0, 128.0], [16.0, 128.0, 128.0], [255.0, 128.0, 128.0]]])
    np.testing.assert_array_equal(ops.ycbcr2rgb(yuv, uint8=True), [[[255] * 3, [0] * 3, [255] * 3]])
    np.testing.assert_allclose(
        ops.ycbcr2rgb(yuv[:, :2] / 255, uint8=False), [[[1.0] * 3, [0.0] * 3]], atol=1e-12
    )
    np.testing.assert_allclose(ops.rgb2lab(np.ones((1, 1, 3))), [[[100.0, 0.0, 0.0]]], atol=0.01)
    np.testing.assert_array_equal(
        np.stack(ops.srgb2lab_uint8(np.full((1, 1, 3), 255)), -1), [[[255, 128, 128]]]
    )
    # the sparse imresize is the baselines' MATLAB imresize
    from rqvqa.families.classic.matlab import imresize

    img = rng.random((37, 50)) * 255
    for scale in (0.5, 2.0, 2 / 3):
        np.testing.assert_allclose(ops.imresize(img, scale), imresize(img, scale), atol=1e-9)
    # zero-border single 2-D correlation (filter2 'same')
    k = rng.random((3, 3))
    from scipy import ndimage

    np.testing.assert_array_equal(ops.filter2(k, img), ndimage.correlate(img, k, mode="constant"))
    # the Laplacian band of a constant image is zero (binom5 reduce/expand preserves DC)
    np.testing.assert_allclose(ops.laplacian_band(np.full((40, 60), 7.0)), 0.0, atol=1e-9)


def _reference_laplacian_band(image: np.ndarray) -> np.ndarray:
    """matlabPyrTools' finest band step by step, one axis at a time (reduce rows, columns; expand rows,
    columns), reflect1 edges: the release's order of operations."""
    from scipy import ndimage

    k = np.sqrt(2) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    lo = ndimage.correlate1d(image, k, axis=1, mode="mirror")[:, ::2]
    lo = ndimage.correlate1d(lo, k, axis=0, mode="mirror")[::2, :]
    up = np.zeros((image.shape[0], lo.shape[1]))
    up[::2] = lo
    up = ndimage.correlate1d(up, k, axis=0, mode="mirror")
    full = np.zeros(image.shape)
    full[:, ::2] = up
    return image - ndimage.correlate1d(full, k, axis=1, mode="mirror")


@pytest.mark.parametrize("shape", [(37, 50), (64, 81), (66, 66)])
def test_separable_passes_are_the_2d_filters(shape):
    """The two-pass filters used where the features are moments are the release's 2-D windows up to
    rounding; the Laplacian band is the axis-by-axis pyramid step."""
    rng = np.random.default_rng(1)
    img = rng.random(shape) * 255
    for size, sigma in ((7, 7 / 6), (7, 1.0), (7, 7 * 1.5 / 6)):
        np.testing.assert_allclose(
            ops.gaussian_filter2(size, sigma, img),
            ops.filter2(ops.fspecial_gaussian(size, sigma), img),
            rtol=0,
            atol=1e-11,
        )
    # GM-LOG's derivative window of the 7x7 Gaussian (sigma 0.5), built as the release builds it
    w = ops.fspecial_gaussian(7, 0.5)
    winx = w[1:-1, 1:-1] - w[1:-1, 2:]
    winx /= np.abs(winx).sum()
    g = ops.gaussian_taps(7, 0.5)
    smooth, diff = g[1:-1] / g[1:-1].sum(), (g[1:-1] - g[2:]) / np.abs(g[1:-1] - g[2:]).sum()
    np.testing.assert_allclose(ops.separable_filter2(smooth, diff, img), ops.filter2(winx, img), atol=1e-11)
    np.testing.assert_allclose(ops.separable_filter2(diff, smooth, img), ops.filter2(winx.T, img), atol=1e-11)
    np.testing.assert_allclose(ops.laplacian_band(img), _reference_laplacian_band(img), rtol=0, atol=1e-11)
    # and the local statistics the moment features read equal the single-pass ones
    for a, b in zip(frame.local_stats(img, separable=True), frame.local_stats(img), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)


def test_key_pixels_match_the_release_loop():
    """The greedy suppression equals the release's loop: take the first maximum in column-major order,
    drop every candidate within the box, repeat."""
    rng = np.random.default_rng(1)
    corner = np.round(rng.random((30, 40)) * 0.05, 3)  # ties on purpose
    bl = 3
    flat = corner.ravel(order="F")
    ys, xs = np.arange(flat.size) % 30, np.arange(flat.size) // 30
    keep = flat > tlvqm.MOT_THRESHOLD
    vals, ys, xs = flat[keep], ys[keep], xs[keep]
    expected = []
    while vals.size and vals.max() > tlvqm.MOT_THRESHOLD:
        k = int(np.argmax(vals))
        y, x = ys[k], xs[k]
        expected.append((int(y), int(x)))
        gone = (np.abs(ys - y) <= bl) & (np.abs(xs - x) <= bl)
        vals, ys, xs = vals[~gone], ys[~gone], xs[~gone]
    assert tlvqm._key_pixels(corner, bl) == expected


def test_lagged_products_are_the_sharpness_products():
    """TLVQM's sharpness reads `a[i:, j:] * a[:h - i, :w - j]` from the circular product, which holds them."""
    a = np.random.default_rng(2).normal(size=(13, 21))
    for i in range(7):
        for j in range(7):
            expected = a[i:, j:] * a[: a.shape[0] - i, : a.shape[1] - j]
            assert np.array_equal(shifted_product(a, (i, j), np.empty_like(a))[i:, j:], expected), (i, j)


def test_flat_and_tiny_frames_are_unmeasurable():
    with pytest.raises(UnmeasurableError, match="flat"):
        frame.spatial_features(np.full((96, 128, 3), 100.0))
    with pytest.raises(UnmeasurableError, match="below VIDEVAL's minimum"):
        frame.spatial_features(np.random.default_rng(0).random((40, 60, 3)) * 255)


def test_pooling_windows_and_column_order():
    assert len(AVG_POOL) == 35 and len(STD_POOL) == 19 and len(FEATURE_NAMES) == 60
    rows = np.arange(20 * 50, dtype=np.float64).reshape(20, 50)
    rows[3] = np.nan  # an unmeasurable frame is skipped, not propagated
    hcf = np.ones((3, 6))
    video, windows = pool(rows, hcf, window=6)
    # windows start at rows 0, 6, 12 (j <= n - window) and span window + 1 rows
    assert windows.shape == (3, 54)
    first = np.delete(rows[0:7], 3, axis=0)
    assert windows[0, 0] == pytest.approx(first[:, AVG_POOL[0] - 1].mean())
    assert windows[1, 35] == pytest.approx(rows[6:13, STD_POOL[0] - 1].std(ddof=1))
    assert np.isfinite(video).all() and video[-1] == 1.0


@pytest.fixture(scope="module")
def light_small(small_video):
    from rqvqa.api import create_predictor

    return create_predictor("videval-light").predict(small_video)


def test_videval_light_predictor_on_a_small_clip(light_small):
    # 75 frames at 30 fps: centres 1, 6, ..., 71 (<= 72), two whole seconds of TLVQM frames (14, 44)
    assert 1.0 <= light_small.score <= 5.0
    assert light_small.extra["frames"] == list(range(1, 72, 5))
    assert len(light_small.per_second) == 2 and all(1.0 <= s <= 5.0 for s in light_small.per_second)
    assert isinstance(light_small.extra["ood"], bool) and np.isfinite(light_small.extra["ood_distance"])
    assert len(light_small.extra["features"]) == 60
    json.dumps(light_small.extra, allow_nan=False)


def test_features_cli_rows_and_failures(small_video, tmp_path, capsys):
    from rqvqa.cli import main

    missing = tmp_path / "missing.mp4"
    code = main(["features", "--set", "brisque", "--csv", str(small_video), str(missing)])
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert code == 1 and rows[0][:4] == ["path", "status", "error", "s1_ggd_shape"] and len(rows[0]) == 39
    assert rows[1][1] == "ok" and all(v != "" for v in rows[1][3:])
    assert rows[2][1] == "error" and "missing.mp4" in rows[2][2] and rows[2][3:] == [""] * 36
    out = tmp_path / "f.npy"
    assert main(["features", "--set", "brisque", "--npy", str(out), str(small_video)]) == 0
    assert np.load(out).shape == (1, 36)


@pytest.mark.golden
@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "mat"),
    [
        ("videval-light", "videval/konvid1k_videval_light720_6fps_feats.mat"),
        ("videval", "konvid1k/videval_feats.mat"),
    ],
)
def test_features_match_the_official_konvid_row(shared_data, variant, mat):
    """At least 58 of 60 features within 5 % or 0.005 of the official KoNViD-1k row of the shared video."""
    from scipy.io import loadmat

    from rqvqa.families.videval.extract import videval_features

    with open(shared_data / "konvid1k" / "metadata.csv") as fh:
        ids = [r["flickr_id"] for r in csv.DictReader(fh)]
    official = loadmat(str(shared_data / mat))["feats_mat"][ids.index(SHARED_VIDEO)]
    ours = videval_features(shared_data / "videos" / f"{SHARED_VIDEO}.mp4", variant).features
    close = (np.abs(ours - official) <= 0.05 * np.abs(official)) | (np.abs(ours - official) <= 0.005)
    assert close.sum() >= 58, [n for n, ok in zip(FEATURE_NAMES, close, strict=True) if not ok]


def test_a_flat_video_is_one_unmeasurable_error(tmp_path):
    import av

    from rqvqa.families.videval.extract import videval_features

    path = tmp_path / "grey.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 128, "yuv420p"
        stream.codec_context.thread_count = 1
        for _ in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((128, 160, 3), 90, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(UnmeasurableError, match="every sampled frame: the frame is flat"):
        videval_features(path, "videval-light480")

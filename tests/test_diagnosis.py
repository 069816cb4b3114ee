"""The artifact diagnosis (`rqvqa.diagnosis`, `rqvqa diagnose`).

Test set (never used for calibration): the shipped real clip `examples/5115335471.mp4` (KoNViD-1k, 960x540,
8 s) and generated clips of other seeds than the calibration's (`rqvqa.diagnosis.scenes.TEST_SEEDS`, and
`rqvqa.video.synth`'s scene). Graded versions come from `rqvqa.video.degrade.grade_video` (libx264, one
thread, mbtree off: deterministic). The default run grades the first 1.2 s of the real clip downscaled to
480x270 (one severity-ordering check per kind); the slow run the whole clip and the generated ones.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from conftest import REPO, SHARED

from rqvqa.diagnosis import KINDS, THRESHOLDS, UNDERRATED, Diagnoser, diagnose_file, underrated_by
from rqvqa.diagnosis import measures as M
from rqvqa.diagnosis.scenes import CALIBRATION_SEEDS, TEST_SEEDS, SceneClip, make_scene_clip
from rqvqa.results import dumps_json
from rqvqa.video.degrade import GRADED, grade_video

REAL = REPO / "examples" / "5115335471.mp4"
SHARED_REAL = SHARED / "data" / "videos" / "5115335471.mp4"

#: the degradations each kind must detect (as in scripts/calibrate_diagnosis.py)
MATCHING = {
    "banding": ("banding",),
    "blocking": ("crf",),
    "blur": ("blur",),
    "noise": ("noise",),
    "exposure": ("underexpose", "overexpose", "gamma_dark", "gamma_bright"),
    "stutter": ("freeze",),
}
#: checked in the default run, on the crop of the real clip (the others in the slow run)
FAST_DEGRADATIONS = ("banding", "crf", "blur", "noise", "underexpose", "overexpose", "freeze")
#: the default run grades the real clip at 480x270 (area downscale), its first 1.2 s
SMALL = (480, 270)
#: a 480x270 crop of the real clip for the CLI tests: hills, water and reflections
CROP = (0, 200, 480, 270)


def _finite_or_none(x) -> bool:
    return x is None or (isinstance(x, float) and math.isfinite(x))


def _check_result_shape(result: dict) -> None:
    assert list(result) == list(KINDS)
    lengths = {len(entry["per_second"]) for entry in result.values()}
    assert len(lengths) == 1
    for kind, entry in result.items():
        assert isinstance(entry["detected"], bool)
        assert _finite_or_none(entry["level"]), (kind, entry)
        assert all(_finite_or_none(v) for v in entry["per_second"]), (kind, entry)
    json.loads(dumps_json(result))  # strict JSON (allow_nan=False) never fails on a result


# ---------------------------------------------------------------------------------- graded clips


class Graded:
    """Graded versions of one source, made on first use and diagnosed once."""

    def __init__(self, source, folder, *, size=None, max_frames=None):
        self.source, self.folder, self.size, self.max_frames = source, folder, size, max_frames
        self._results: dict[tuple[str, float | None], dict] = {}

    def result(self, kind: str, severity: float | None) -> dict:
        key = (kind if severity is not None else "clean", severity)
        if key not in self._results:
            name = "clean" if severity is None else f"{kind}_{severity:g}"
            path = grade_video(
                self.source,
                self.folder / f"{name}.mp4",
                kind if severity is not None else "crf",
                severity,
                max_frames=self.max_frames,
                size=self.size,
            )
            self._results[key] = diagnose_file(path)
        return self._results[key]

    def levels(self, degradation: str, kind: str, key: str = "level") -> list[float]:
        return [self.result(degradation, None)[kind][key]] + [
            self.result(degradation, s)[kind][key] for s in GRADED[degradation]
        ]


@pytest.fixture(scope="module")
def real_small(tmp_path_factory) -> Graded:
    return Graded(REAL, tmp_path_factory.mktemp("real_small"), size=SMALL, max_frames=36)


@pytest.fixture(scope="module")
def real_full(tmp_path_factory) -> Graded:
    return Graded(REAL, tmp_path_factory.mktemp("real_full"))


@pytest.fixture(scope="module")
def scene_clip(tmp_path_factory) -> Graded:
    folder = tmp_path_factory.mktemp("scene")
    source = make_scene_clip(folder / "source.mkv", TEST_SEEDS[0], width=640, height=360, n_frames=90)
    return Graded(source, folder)


def _assert_graded(graded: Graded, degradation: str) -> None:
    kinds = [k for k, degs in MATCHING.items() if degradation in degs]
    assert len(kinds) == 1
    kind = kinds[0]
    # exposure: the matching direction's level (a clip can be both, e.g. a clipped sun over dark water)
    brighter = degradation in ("overexpose", "gamma_bright")
    key = "level" if kind != "exposure" else ("over" if brighter else "under")
    levels = graded.levels(degradation, kind, key)
    assert all(x is not None for x in levels), levels
    # strictly rising with severity
    assert all(b > a for a, b in zip(levels, levels[1:], strict=False)), (degradation, levels)
    clean = graded.result(degradation, None)[kind]
    strongest = graded.result(degradation, GRADED[degradation][-1])[kind]
    assert not clean["detected"], (kind, levels)
    assert strongest["detected"], (kind, levels)
    if kind == "exposure":
        assert strongest["direction"] == (
            "over" if degradation in ("overexpose", "gamma_bright") else "under"
        )


@pytest.mark.parametrize("degradation", FAST_DEGRADATIONS)
def test_levels_rise_with_severity_on_a_small_copy_of_the_real_clip(real_small, degradation):
    _assert_graded(real_small, degradation)


@pytest.mark.slow
@pytest.mark.parametrize("degradation", list(GRADED))
def test_levels_rise_with_severity_on_the_whole_real_clip(real_full, degradation):
    _assert_graded(real_full, degradation)


@pytest.mark.slow
@pytest.mark.parametrize("degradation", list(GRADED))
def test_levels_rise_with_severity_on_a_generated_scene(scene_clip, degradation):
    _assert_graded(scene_clip, degradation)


@pytest.mark.slow
@pytest.mark.parametrize("degradation", ["gamma_dark", "gamma_bright"])
def test_gamma_shifts_on_the_small_copy(real_small, degradation):
    _assert_graded(real_small, degradation)


# -------------------------------------------------------------------------------- false alarms


def _clean_test_clips(folder) -> dict[str, object]:
    """The clean clips of the test set that are cheap enough for the default run: the real clip as shipped,
    the generated test scenes and rqvqa.video.synth's scene (CRF 18 re-encodes of lossless sources); the
    re-encode of the whole real clip is checked in the slow run."""
    from rqvqa.video.synth import make_video

    clips: dict[str, object] = {"konvid-5115335471 (as shipped)": REAL}
    for seed in TEST_SEEDS:
        source = make_scene_clip(folder / f"scene{seed}.mkv", seed, width=480, height=270, n_frames=45)
        clips[f"scene {seed}"] = grade_video(source, folder / f"scene{seed}.mp4", "crf", None)
    synth = make_video(
        folder / "synth.mkv", width=480, height=270, n_frames=45, codec="ffv1", crf=None, seed=3
    )
    clips["synth seed 3"] = grade_video(synth, folder / "synth.mp4", "crf", None)
    return clips


def _no_false_alarm(clips: dict) -> None:
    alarms = {}
    for name, clip in clips.items():
        result = clip if isinstance(clip, dict) else diagnose_file(clip)
        _check_result_shape(result)
        alarms[name] = [k for k in KINDS if result[k]["detected"]]
        # and with a margin: every level below 80 % of its threshold
        for kind in KINDS:
            level = result[kind]["level"]
            assert level is None or level < 0.8 * THRESHOLDS[kind], (name, kind, level)
    assert all(not found for found in alarms.values()), alarms


def test_no_false_alarm_on_the_clean_test_clips(tmp_path):
    _no_false_alarm(_clean_test_clips(tmp_path))


@pytest.mark.slow
def test_no_false_alarm_on_the_clean_reencodes_of_the_whole_clips(real_full, scene_clip):
    _no_false_alarm(
        {
            "konvid-5115335471 (CRF 18)": real_full.result("crf", None),
            "scene 101": scene_clip.result("crf", None),
        }
    )


@pytest.mark.skipif(not SHARED_REAL.is_file(), reason=f"shared real clip not found at {SHARED_REAL}")
def test_the_shared_copy_of_the_real_clip_is_not_flagged():
    result = diagnose_file(SHARED_REAL)
    assert not any(result[k]["detected"] for k in KINDS), result


def test_calibration_and_test_scenes_differ():
    assert not set(CALIBRATION_SEEDS) & set(TEST_SEEDS)
    a = next(SceneClip(CALIBRATION_SEEDS[0], 64, 48, 2).frames())
    b = next(SceneClip(TEST_SEEDS[0], 64, 48, 2).frames())
    assert not np.array_equal(a, b)
    # deterministic
    assert np.array_equal(a, next(SceneClip(CALIBRATION_SEEDS[0], 64, 48, 2).frames()))


# --------------------------------------------------------------------------- per-frame measures


def _ramp(height=270, width=480, lo=40.0, hi=200.0) -> np.ndarray:
    """A smooth horizontal luma ramp (float)."""
    return np.broadcast_to(np.linspace(lo, hi, width), (height, width)).copy()


def _pink(seed=0, height=270, width=480, contrast=40.0, mean=120.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((height, width))
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1
    img = np.fft.irfft2(np.fft.rfft2(white) / f, s=(height, width))
    return mean + contrast * img / img.std()


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def test_banding_index_grows_with_the_quantisation_step():
    ramp = _ramp()
    levels = [M.banding_index(_u8(ramp))]
    for step in (8, 16, 32):
        levels.append(M.banding_index(_u8((ramp // step) * step + step // 2)))
    assert all(b > a for a, b in zip(levels, levels[1:], strict=False)), levels
    assert levels[-1] > THRESHOLDS["banding"] > levels[0]


def test_banding_index_ignores_dither_texture_and_flat_frames():
    rng = np.random.default_rng(0)
    dithered = _u8((_ramp() + rng.uniform(-8, 8, (270, 480))) // 16 * 16 + 8)  # noise before quantising
    banded = _u8(_ramp() // 16 * 16 + 8)
    assert M.banding_index(dithered) < 0.5 * M.banding_index(banded)
    assert M.banding_index(_u8(_pink())) < THRESHOLDS["banding"] / 4
    assert M.banding_index(np.full((270, 480), 128, np.uint8)) == 0.0


def test_banding_visibility_follows_the_display():
    # the same 1-level steps: invisible in near-black, visible at mid-grey (BT.1886, Weber 1.9 %)
    dark = _u8(_ramp(lo=16, hi=24))
    mid = _u8(_ramp(lo=120, hi=128))
    assert M.banding_index(dark) < M.banding_index(mid)


def _blocky(seed=0, block=8, shift=0) -> np.ndarray:
    """Smooth content with a per-block offset: the steps a coarse DCT quantiser leaves at block edges."""
    rng = np.random.default_rng(seed)
    base = _pink(seed, contrast=20)
    offsets = rng.normal(0, 4, (270 // block + 2, 480 // block + 2))
    grid = np.kron(offsets, np.ones((block, block)))[shift : shift + 270, shift : shift + 480]
    return _u8(base + grid)


def test_blockiness_sees_the_grid_at_any_phase_and_not_natural_content():
    natural = M.blockiness(_u8(_pink(1)))
    assert natural < 5.0
    for shift in (0, 3, 5):
        assert M.blockiness(_blocky(shift=shift)) > 6 * natural
    # stronger block steps, stronger level
    weak = _u8(
        _pink(0, contrast=20)
        + np.kron(np.random.default_rng(0).normal(0, 1, (35, 61)), np.ones((8, 8)))[:270, :480]
    )
    assert M.blockiness(weak) < M.blockiness(_blocky())


def test_blur_effect_is_skimages():
    from skimage.measure import blur_effect

    frames = [
        _u8(_pink(2)),
        _u8(_pink(3, height=97, width=131)),
        np.random.default_rng(0).integers(0, 256, (64, 80), dtype=np.uint8),
    ]
    for frame in frames:
        assert M.blur_effect(frame) == pytest.approx(blur_effect(frame), rel=1e-4, abs=1e-5)


def test_blur_level_grows_with_gaussian_blur():
    import cv2

    sharp = _u8(_pink(4, contrast=50) + 60 * (np.indices((270, 480))[1] % 97 > 48))
    levels = [M.blur_level(sharp)] + [
        M.blur_level(cv2.GaussianBlur(sharp, (0, 0), s, borderType=cv2.BORDER_REFLECT)) for s in (1, 2, 4)
    ]
    assert all(b > a for a, b in zip(levels, levels[1:], strict=False)), levels
    assert M.blur_level(np.full((64, 64), 77, np.uint8)) is None  # no edge to judge


def test_noise_sigma_measures_added_gaussian_noise_and_ignores_texture():
    from skimage.restoration import estimate_sigma

    rng = np.random.default_rng(1)
    flat = np.full((270, 480), 120.0)
    # texture over 60 % of the picture, a smooth ramp beside it (pictures have quiet parts)
    textured = _ramp(lo=90, hi=150)
    textured[:, :288] = _pink(5, contrast=30)[:, :288]
    for sigma in (3.0, 8.0, 16.0):
        noise = rng.normal(0, sigma, flat.shape)
        alone = _u8(flat + noise)
        # noise alone: skimage's whole-frame estimate, and the sigma added
        assert M.noise_sigma(alone) == pytest.approx(estimate_sigma(alone.astype(np.float32)), rel=0.05)
        assert M.noise_sigma(alone) == pytest.approx(sigma, rel=0.1)
        # on a partly textured picture: still the noise
        assert M.noise_sigma(_u8(textured + noise)) == pytest.approx(sigma, rel=0.2)
    # texture alone is not noise (skimage's whole-frame estimate counts it)
    assert M.noise_sigma(_u8(textured)) < 0.5 * estimate_sigma(_u8(textured).astype(np.float32))
    assert M.noise_sigma(np.full((40, 40), 9, np.uint8)) == 0.0


def test_noise_band_is_dwt2s_diagonal_band():
    import pywt

    rng = np.random.default_rng(4)
    for shape in ((8, 8), (9, 13), (64, 40), (33, 100)):
        img = (rng.random(shape) * 255).astype(np.float32)
        assert np.array_equal(M._diagonal_detail(img), pywt.dwt2(img, "db2")[1][2]), shape


def test_flat_mask_and_tile_bins_follow_their_definitions():
    def reference(v):
        zero = np.ones(v.shape, np.float32)
        zero[:, :-1][v[:, 1:] != v[:, :-1]] = 0.0
        zero[:-1, :][v[1:, :] != v[:-1, :]] = 0.0
        return cv2.blur(zero, (5, 5), borderType=cv2.BORDER_REFLECT) >= M.FLAT_SHARE

    rng = np.random.default_rng(6)
    for shape in ((6, 12), (9, 31), (40, 64)):
        v = rng.integers(0, 1020, shape).astype(np.uint16)
        v[:, : shape[1] // 2] = 300  # a flat left half beside noise: both outcomes occur
        mask = M._flat_mask(v)
        assert np.array_equal(mask, reference(v)) and 0 < mask.sum() < mask.size, shape
    # a 3-column stripe at the right edge: each row's last pixel differs from the next row's first, which is
    # no derivative (taken as one, the two columns beside the last would not be flat)
    v = np.full((12, 20), 300, np.uint16)
    v[:, -3:] = 500
    assert np.array_equal(M._flat_mask(v), reference(v)) and reference(v)[:, -2:].all()
    bins, area = M._tile_bins(10, 7, 4)
    rows, cols = np.indices((10, 7))
    assert np.array_equal(bins, ((rows // 4) * 2 + cols // 4) * 1024)
    assert np.array_equal(area, [[16, 12], [16, 12], [8, 6]])


def test_exposure_levels_and_full_range():
    black_limited = np.full((64, 64), 16, np.uint8)
    assert M.exposure(black_limited)["under"] == 1.0
    assert M.exposure(black_limited, full_range=True)["crushed"] == 0.0  # 16 of 255 is a dark grey, not black
    white = M.exposure(np.full((64, 64), 235, np.uint8))
    assert white["over"] == pytest.approx(1.0) and white["under"] == pytest.approx(0.0, abs=1e-6)
    mid = M.exposure(_u8(_pink(6)))
    assert mid["under"] < 0.2 and mid["over"] < 0.2
    assert M.exposure(np.full((64, 64), 255, np.uint8), full_range=True)["clipped"] == 1.0


def test_thumbnail_difference():
    a = _u8(_pink(7))
    assert M.thumbnail(a).shape == (34, 60)
    assert M.frame_difference(M.thumbnail(a), M.thumbnail(a)) == 0.0
    assert M.frame_difference(M.thumbnail(a), M.thumbnail(255 - a)) > 10
    assert M.frame_difference(M.thumbnail(a), M.thumbnail(a[:100])) is None


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (7, 9), (16, 16), (17, 33), (31, 8), (64, 3)])
@pytest.mark.parametrize("content", ["black", "white", "random", "flat"])
def test_measures_never_nan_on_tiny_or_flat_frames(shape, content):
    rng = np.random.default_rng(0)
    frame = {
        "black": np.zeros(shape, np.uint8),
        "white": np.full(shape, 255, np.uint8),
        "random": rng.integers(0, 256, shape, dtype=np.uint8),
        "flat": np.full(shape, 100, np.uint8),
    }[content]
    for fn in (M.banding_index, M.blockiness, M.blur_effect, M.blur_level, M.noise_sigma):
        assert _finite_or_none(fn(frame)), fn.__name__
    exp = M.exposure(frame)
    assert all(math.isfinite(v) for v in exp.values())


def test_measures_on_an_8k_frame_read_a_reduced_copy():
    frame = np.zeros((4320, 7680), np.uint8)
    frame[:] = _u8(np.linspace(30, 220, 7680))[None, :] // 16 * 16
    assert M.reduction_factor(4320, 7680) == 4
    assert M.working_luma(frame).shape == (1080, 1920)
    assert M.banding_index(frame) > THRESHOLDS["banding"]
    for fn in (M.blockiness, M.blur_level, M.noise_sigma):
        assert _finite_or_none(fn(frame))


# ----------------------------------------------------------------------------------- the stream


def _moving_frames(n, height=72, width=128, seed=0):
    """Frames of a panning texture (every frame differs from the one before)."""
    canvas = _u8(_pink(seed, height=height, width=width + n * 2))
    for i in range(n):
        yield canvas[:, 2 * i : 2 * i + width]


def test_wants_one_frame_a_second_and_keeps_no_frames():
    d = Diagnoser(128, 72, 30.0, frame_count=300)
    wanted = [i for i in range(300) if d.wants(i)]
    assert wanted == list(range(15, 300, 30))
    for i, frame in enumerate(_moving_frames(300)):
        d.add(i, i / 30.0, frame)
        assert len(d._pending) <= 3  # raw frame differences of at most three seconds
    assert d._fallback is None
    result = d.result()
    _check_result_shape(result)
    assert len(result["stutter"]["per_second"]) == 10
    assert result["stutter"]["level"] == 0.0


def test_repeated_frames_amid_motion_are_stutter_a_still_scene_is_not():
    frames = list(_moving_frames(150))
    d = Diagnoser(128, 72, 30.0)
    for i in range(150):
        # every 5th frame repeats the one before: 20 % of the time the picture does not advance
        d.add(i, i / 30.0, frames[i - 1] if i % 5 == 4 else frames[i])
    stutter = d.result()["stutter"]
    assert stutter["level"] == pytest.approx(20.0, abs=1.0) and stutter["detected"]
    still = Diagnoser(128, 72, 30.0)
    for i in range(150):
        still.add(i, i / 30.0, frames[0])
    assert still.result()["stutter"]["level"] == 0.0


def test_timestamp_gaps_are_stutter():
    d = Diagnoser(128, 72, 30.0)
    t = 0.0
    for i, frame in enumerate(_moving_frames(150)):
        d.add(i, t, frame)
        t += 1 / 30 if i % 10 else 4 / 30  # every 10th interval skips 3 frames
    stutter = d.result()["stutter"]
    assert stutter["detected"] and stutter["level"] > THRESHOLDS["stutter"]


def test_unknown_times_and_a_clip_shorter_than_a_second():
    d = Diagnoser(128, 72, 30.0)  # frame count unknown: the last frame is analysed when none was
    for i, frame in enumerate(_moving_frames(5)):
        d.add(i, None, frame)
    result = d.result()
    _check_result_shape(result)
    assert result["noise"]["per_second"][0] is not None


def test_nothing_fed_gives_no_levels():
    result = Diagnoser(64, 64, 25.0).result()
    assert all(result[k]["level"] is None and not result[k]["detected"] for k in KINDS)


@pytest.mark.parametrize("size", [(2, 2), (8, 6)])
def test_tiny_and_black_videos_diagnose_without_nan(tmp_path, size):
    from rqvqa.video.synth import write_frames

    h, w = size
    path = write_frames(tmp_path / "tiny.mkv", [np.zeros((h, w, 3), np.uint8)] * 40, fps=20)
    result = diagnose_file(path)
    _check_result_shape(result)
    black = write_frames(tmp_path / "black.mkv", [np.zeros((90, 160, 3), np.uint8)] * 40, fps=20)
    result = diagnose_file(black)
    _check_result_shape(result)
    assert result["exposure"]["detected"] and result["exposure"]["direction"] == "under"
    assert not result["stutter"]["detected"]  # a still picture is not a frozen one


def test_full_range_video_is_read_as_full_range(tmp_path):
    from rqvqa.video.synth import write_frames

    # a grey of 60 (full range) is not crushed (under < 1); read as limited range it would be darker
    frames = [np.full((64, 96, 3), 60, np.uint8)] * 30
    full = write_frames(tmp_path / "j.mp4", frames, codec="libx264", pix_fmt="yuvj420p", crf=0)
    assert diagnose_file(full)["exposure"]["per_second"][0] < 1.0
    limited_black = write_frames(
        tmp_path / "l.mp4", [np.zeros((64, 96, 3), np.uint8)] * 30, codec="libx264", crf=0
    )
    assert diagnose_file(limited_black)["exposure"]["per_second"][0] == 1.0


def test_variable_frame_rate_file_with_a_gap(tmp_path):
    from rqvqa.video.synth import make_video

    times = [i / 30 for i in range(60)] + [2.5 + i / 30 for i in range(60)]  # 0.5 s missing at 2 s
    path = make_video(tmp_path / "vfr.mp4", width=160, height=96, frame_times=times)
    stutter = diagnose_file(path)["stutter"]
    assert stutter["detected"]
    assert max(v for v in stutter["per_second"] if v is not None) >= 40.0


# ------------------------------------------------------------------------------- the known blind spots


def test_underrated_lists_only_measured_models_and_known_kinds():
    for model, kinds in UNDERRATED.items():
        assert model in ("lite", "videval-light")
        assert set(kinds) <= set(KINDS)
    detected = {k: {"level": 1.0, "detected": k == "banding", "per_second": []} for k in KINDS}
    expected = ["banding"] if "banding" in UNDERRATED.get("lite", ()) else []
    assert underrated_by("lite", detected) == expected
    assert underrated_by("no-such-model", detected) == []


# ---------------------------------------------------------------------------------------- the CLI


def test_cli_json_and_errors(tmp_path, capsys):
    from rqvqa.cli import main

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    clip = grade_video(REAL, tmp_path / "banded.mp4", "banding", 32.0, max_frames=30, crop=CROP)
    code = main(["diagnose", str(clip), str(bad), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    rows = json.loads(captured.out)
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert rows[0]["diagnosis"]["banding"]["detected"] and rows[0]["error"] is None
    assert rows[1]["diagnosis"] is None and "broken.mp4" in rows[1]["error"]
    assert "\n" not in rows[1]["error"]
    assert "1 of 2 file(s) failed" in captured.err
    assert "NaN" not in captured.out and "Infinity" not in captured.out


def test_cli_table_fits_80_columns(tmp_path, capsys):
    from rqvqa.cli import main

    clip = grade_video(
        REAL, tmp_path / "a_rather_long_file_name_for_the_table.mp4", "noise", 40.0, max_frames=30, crop=CROP
    )
    assert main(["diagnose", str(clip)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert "noise" in lines[1] and "35" not in lines[0]
    assert main(["diagnose"]) == 1  # no video: a one-line error, no traceback


def test_is_full_range_from_the_frame():
    import av

    from rqvqa.diagnosis import is_full_range

    assert is_full_range(av.VideoFrame(16, 16, "yuvj420p"))
    assert not is_full_range(av.VideoFrame(16, 16, "yuv420p"))  # the video default: limited range
    assert is_full_range(av.VideoFrame(16, 16, "gray"))
    # RGB reaches the measures through frame_to_gray's BT.601 limited-range Y (white 235, black 16)
    assert not is_full_range(av.VideoFrame(16, 16, "rgb24"))
    tagged = av.VideoFrame(16, 16, "yuv420p")
    tagged.color_range = 2  # JPEG range signalled on a plain yuv format
    assert is_full_range(tagged)

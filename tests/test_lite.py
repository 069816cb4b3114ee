"""The lite models, the model zoo and `rqvqa predict`: generated clips, no download, CPU only; pinned values
and degradation consistency on the shared KoNViD-1k video (golden, skip without ../shared/data)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from rqvqa.api import create_predictor
from rqvqa.errors import ConfigError, WeightsError
from rqvqa.families.lite.fit import fit_lite
from rqvqa.families.lite.predictor import LITE_V1_FEATURES as LITE_FEATURES
from rqvqa.families.lite.predictor import LiteV1Predictor, load_lite
from rqvqa.registry import REGISTRY

SHARED_VIDEO = "5115335471.mp4"
#: lite (v2) on the shared video, pinned when the model was chosen (docs/videval.md); a change means the
#: features or the model moved
LITE_PINNED = 2.7464


@pytest.fixture(scope="module")
def v1_result(small_video):
    return LiteV1Predictor().predict(small_video)


def test_lite_v1_fast_mode_keeps_per_second_length(small_video, v1_result):
    # small_video: 75 frames at 30 fps -> two whole seconds, protocol frames 14 and 44
    assert v1_result.extra["frames"] == [14, 44] and len(v1_result.per_second) == 2
    fast = LiteV1Predictor(max_frames=1).predict(small_video)
    assert len(fast.per_second) == 2 and len(fast.extra["frames"]) == 1


@pytest.mark.golden
def test_lite_pinned_value_on_the_shared_video(shared_data):
    pred = create_predictor("lite").predict(shared_data / "videos" / SHARED_VIDEO)
    assert pred.score == pytest.approx(LITE_PINNED, abs=0.005)
    assert pred.extra["ood"] is False and len(pred.per_second) == 8
    assert all(s is not None and 1.0 <= s <= 5.0 for s in pred.per_second)


def test_packaged_v1_model_card():
    model = load_lite()
    assert model.features == LITE_FEATURES and model.svr.n_features == 37
    assert model.clip == (1.0, 5.0)
    assert model.meta["n_train"] == 1200


def test_numpy_svr_equals_sklearn(tmp_path):
    from sklearn.svm import SVR

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, len(LITE_FEATURES)))
    y = np.clip(3 + x[:, 0] - x[:, 36] * 0.5, 1, 5)
    model = fit_lite(x, y, c=4.0, gamma=1 / 32, features=LITE_FEATURES)
    z = (x - x.mean(0)) / x.std(0)
    ref = SVR(C=model.meta["C"], gamma=model.meta["gamma"], epsilon=0.1).fit(z, y)
    x_new = rng.normal(size=(7, len(LITE_FEATURES)))
    np.testing.assert_allclose(
        model.svr.predict(x_new), ref.predict((x_new - x.mean(0)) / x.std(0)), atol=1e-8
    )
    # round trip through the JSON file format, loaded from a weights folder
    (tmp_path / "lite_konvid1k.json").write_text(json.dumps(model.to_dict()))
    again = load_lite(tmp_path)
    np.testing.assert_allclose(again.predict(x_new), model.predict(x_new))


def test_bad_lite_file_is_a_weights_error(tmp_path):
    bad = tmp_path / "lite.json"
    bad.write_text("{not json")
    with pytest.raises(WeightsError, match="not a lite model file"):
        load_lite(bad)
    with pytest.raises(WeightsError, match="cannot read"):
        load_lite(tmp_path / "missing.json")


def test_zoo_declares_models():
    for name, lower in (("lite", False), ("lite-v1", False), ("brisque", True), ("niqe", True)):
        predictor = create_predictor(name)
        assert predictor.card.lower_better is lower
        card = predictor.card.to_dict()
        assert card["name"] == name and len(card["score_range"]) == 2
    with pytest.raises(ConfigError, match="does not take"):
        create_predictor("lite", colour="blue")
    with pytest.raises(ConfigError, match="does not take"):
        create_predictor("lite", max_frames=4)  # lite v2 has no fast mode; lite-v1 has


@pytest.mark.slow
def test_zoo_unknown_model_lists_all():
    # Imports every registered model module (the neural ones pull in torch): slow on 2 cores.
    assert {"lite", "brisque", "niqe"} <= set(REGISTRY.model_names())
    assert all(REGISTRY.model_class(name).name == name for name in REGISTRY.model_names())
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create_predictor("nope")


def test_brisque_and_niqe_predictors(small_video):
    b = create_predictor("brisque").predict(small_video)
    assert len(b.per_second) == 2 and np.isfinite(b.score)
    assert b.score == pytest.approx(np.mean(b.extra["frame_scores"]))
    n = create_predictor("niqe", max_frames=1).predict(small_video)
    assert len(n.per_second) == 2 and n.score > 0


# ------------------------------------------------------------------------------------ CLI


def test_predict_cli_json_csv_table(small_video, capsys):
    from rqvqa.cli import main

    assert main(["predict", str(small_video), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["model"] == "lite" and 1 <= out[0]["score"] <= 5 and len(out[0]["per_second"]) == 2

    assert main(["predict", str(small_video), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["path"] == str(small_video) and float(rows[0]["score"]) == pytest.approx(
        out[0]["score"], abs=1e-4
    )
    assert len(rows[0]["per_second"].split()) == 2

    assert main(["predict", str(small_video)]) == 0
    assert "lite" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_cli_errors(capsys):
    from rqvqa.cli import main

    assert main(["predict", "--model", "nope", "x.mp4"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["predict"]) == 1
    assert "no video given" in capsys.readouterr().err
    assert main(["predict", "--list-models", "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)]
    assert {"lite", "brisque", "niqe"} <= set(names)


# ------------------------------------------------------------------------ degradation consistency

DEGRADED = ("crf45", "blur", "noise", "downup")
MODELS = ("lite", "videval-light", "brisque", "niqe")
#: known failures, measured (docs/videval.md): BRISQUE scores luma noise on this soft video as better than the
#: clean re-encode, NIQE scores CRF 45 on the test's 5-s clip as better (on the whole 8-s clip it is worse by
#: only 0.09); strict xfails, so that a change is noticed
KNOWN_MISRANKED = {
    ("brisque", "noise"): "BRISQUE misranks luma noise",
    ("niqe", "crf45"): "NIQE misranks CRF 45",
}


@pytest.fixture(scope="module")
def degradation_scores(shared_data, tmp_path_factory):
    """{model: {version: score}} for the clean re-encode and the strong degradations of the shared video
    (first 5 s, libx264 with one thread: deterministic)."""
    from rqvqa.video.degrade import DEGRADATIONS, degrade_video

    folder = tmp_path_factory.mktemp("degraded")
    clips = {
        k: degrade_video(shared_data / "videos" / SHARED_VIDEO, folder / f"{k}.mp4", k, max_frames=150)
        for k in DEGRADATIONS
    }
    return {m: {k: create_predictor(m).predict(p).score for k, p in clips.items()} for m in MODELS}


@pytest.mark.golden
@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("version", DEGRADED)
def test_strong_degradations_score_below_the_clean_reencode(degradation_scores, model, version, request):
    if (model, version) in KNOWN_MISRANKED:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISRANKED[model, version]))
    scores = degradation_scores[model]
    worse = (
        scores[version] > scores["clean"]
        if create_predictor(model).card.lower_better
        else (scores[version] < scores["clean"])
    )
    assert worse, scores


@pytest.mark.golden
@pytest.mark.slow
def test_lite_scores_do_not_collapse(degradation_scores):
    scores = sorted(degradation_scores["lite"].values())
    assert min(np.diff(scores)) > 0.01, scores

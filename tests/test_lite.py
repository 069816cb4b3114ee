"""The lite model, the model zoo and `rqvqa predict`: generated clips, no download, CPU only."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from rqvqa.errors import ConfigError, WeightsError
from rqvqa.lite import LITE_FEATURES, LitePredictor, fit_lite, load_lite
from rqvqa.zoo import Prediction, available_predictors, create_predictor


@pytest.fixture(scope="module")
def lite_result(small_video):
    return LitePredictor().predict(small_video)


def test_lite_predicts_in_range_with_per_second_scores(lite_result):
    # small_video: 75 frames at 30 fps -> two whole seconds, protocol frames 14 and 44
    assert isinstance(lite_result, Prediction)
    assert 1.0 <= lite_result.score <= 5.0
    assert len(lite_result.per_second) == 2
    assert all(1.0 <= s <= 5.0 for s in lite_result.per_second)
    assert lite_result.extra["frames"] == [14, 44]
    assert np.isfinite(lite_result.extra["log_bpp"])


def test_lite_fast_mode_keeps_per_second_length(small_video, lite_result):
    fast = LitePredictor(max_frames=1).predict(small_video)
    assert len(fast.per_second) == 2 and len(fast.extra["frames"]) == 1
    assert 1.0 <= fast.score <= 5.0


def test_packaged_model_card():
    model = load_lite()
    assert model.features == LITE_FEATURES and model.svr.n_features == 37
    assert model.clip == (1.0, 5.0)
    assert model.meta["n_train"] == 1200


def test_numpy_svr_equals_sklearn(tmp_path):
    from sklearn.svm import SVR

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, len(LITE_FEATURES)))
    y = np.clip(3 + x[:, 0] - x[:, 36] * 0.5, 1, 5)
    model = fit_lite(x, y, c=4.0, gamma=1 / 32)
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
    for name, lower in (("lite", False), ("brisque", True), ("niqe", True)):
        predictor = create_predictor(name)
        assert predictor.lower_better is lower
        card = predictor.card()
        assert card["name"] == name and len(card["score_range"]) == 2
    with pytest.raises(ConfigError, match="does not take"):
        create_predictor("lite", colour="blue")


@pytest.mark.slow
def test_zoo_unknown_model_lists_all():
    # Imports every registered model module (the neural ones pull in torch): slow on 2 cores.
    models = available_predictors()
    assert {"lite", "brisque", "niqe"} <= set(models)
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

"""Metrics (SRCC/KRCC/PLCC/RMSE, logistic fits, NTIRE 2024 score) and losses: golden and property tests."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from rqvqa import metrics
from rqvqa.data.labels import read_rank_pairs, read_scores
from rqvqa.errors import ConfigError, InputError
from rqvqa.losses import get_loss, mae_loss, mse_loss, plcc_loss
from rqvqa.metrics import RankPair

# ---- golden: eval_metrics


def _eval_sets(fixtures):
    sidecar = json.loads((fixtures / "eval_metrics.json").read_text())
    tensors = load_file(fixtures / "eval_metrics.safetensors")
    # Set names come from the sidecar so a fixture folder with other sizes works unchanged.
    return [(name, tensors) for name in sidecar["results"]]


@pytest.mark.golden
def test_performance_fit_matches_official(fixtures):
    for name, t in _eval_sets(fixtures):
        mos, pred = t[f"input.{name}.mos"], t[f"input.{name}.pred"]
        expected = t[f"output.{name}.metrics"]  # [PLCC, SRCC, KRCC, RMSE]
        got = metrics.performance(pred, mos, fit="logistic4")
        assert got["fit_used"] == "logistic4" and got["fit_fallback"] is None
        assert abs(got["PLCC"] - expected[0]) < 1e-6, name
        assert abs(got["SRCC"] - expected[1]) < 1e-12, name
        assert abs(got["KRCC"] - expected[2]) < 1e-12, name
        assert abs(got["RMSE"] - expected[3]) < 1e-6, name
        assert abs(metrics.srcc(pred, mos) - expected[1]) < 1e-12
        assert abs(metrics.krcc(pred, mos) - expected[2]) < 1e-12
        assert abs(metrics.plcc(pred, mos, fit="logistic4") - expected[0]) < 1e-6
        assert abs(metrics.rmse(pred, mos, fit="logistic4") - expected[3]) < 1e-6


@pytest.mark.golden
def test_logistic4_fitted_values_match_official(fixtures):
    for name, t in _eval_sets(fixtures):
        fitted, curve = metrics.fit_predictions(t[f"input.{name}.pred"], t[f"input.{name}.mos"], "logistic4")
        assert curve is not None and curve.kind == "logistic4"
        np.testing.assert_allclose(fitted, t[f"output.{name}.y_output_logistic"], rtol=0, atol=1e-6)


@pytest.mark.golden
def test_plcc_loss_matches_official_both_argument_orders(fixtures):
    for name, t in _eval_sets(fixtures):
        pred = torch.from_numpy(t[f"input.{name}.pred"]).float()
        mos = torch.from_numpy(t[f"input.{name}.mos"]).float()
        assert abs(plcc_loss(pred, mos).item() - float(t[f"output.{name}.plcc_loss"][0])) < 1e-6
        swapped = float(t[f"output.{name}.plcc_loss_swapped_args"][0])
        assert abs(plcc_loss(mos, pred).item() - swapped) < 1e-6


# ---- golden: kvq_metric


@pytest.mark.golden
@pytest.mark.parametrize("pairs_file", ["rank-pair-val.xlsx", "rank_pairs.json"])
def test_ntire2024_score_matches_official_scorer(fixtures, pairs_file):
    folder = fixtures / "kvq_metric"
    expected = json.loads((folder / "expected.json").read_text())["expected"]
    pairs = read_rank_pairs(folder / pairs_file)
    got = metrics.ntire2024_score(
        read_scores(folder / "prediction.csv"),
        read_scores(folder / "truth.csv"),
        pairs["nonsource"],
        pairs["source"],
    )
    assert abs(got["score"] - expected["score"]) < 1e-6
    assert abs(got["SROCC"] - expected["SROCC"]) < 1e-6
    assert abs(got["PLCC"] - expected["PLCC"]) < 1e-6
    assert abs(got["Rank1"] - expected["acc_non_source"]) < 1e-6
    assert abs(got["Rank2"] - expected["acc_source"]) < 1e-6


@pytest.mark.golden
def test_rank_pair_workbook_and_json_agree(fixtures):
    folder = fixtures / "kvq_metric"
    assert read_rank_pairs(folder / "rank-pair-val.xlsx") == read_rank_pairs(folder / "rank_pairs.json")


# ---- unit: metrics


def test_input_validation():
    with pytest.raises(InputError, match="differ in length"):
        metrics.srcc([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="at least 2"):
        metrics.plcc([1.0], [2.0])
    with pytest.raises(InputError, match="finite"):
        metrics.performance([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="finite"):
        metrics.krcc([1.0, 2.0, 3.0], [1.0, np.inf, 3.0])
    with pytest.raises(ConfigError, match="unknown fit"):
        metrics.plcc([1, 2, 3], [1, 2, 3], fit="cubic")


def test_rank_correlations_on_known_orderings():
    x = np.arange(10.0)
    assert metrics.srcc(x, x**3) == pytest.approx(1.0)
    assert metrics.krcc(x, -x) == pytest.approx(-1.0)
    # tau-b with one tie in each variable: concordant 4, discordant 0, ties 1+1 of 6 pairs -> 4 / 5.
    assert metrics.krcc([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(4 / 5)


def test_raw_plcc_and_rmse():
    rng = np.random.default_rng(0)
    pred, mos = rng.normal(size=40), rng.normal(size=40)
    assert metrics.plcc(pred, mos) == pytest.approx(np.corrcoef(pred, mos)[0, 1], abs=1e-12)
    assert metrics.rmse(pred, mos) == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)), abs=1e-12)
    tensors = torch.tensor(pred, dtype=torch.float32, requires_grad=True), torch.tensor(mos)
    assert metrics.plcc(*tensors) == pytest.approx(metrics.plcc(pred, mos), abs=1e-6)
    assert metrics.srcc(*tensors) == metrics.srcc(pred, mos)


def test_logistic4_recovers_an_exact_logistic():
    x = np.linspace(-3, 5, 60)
    y = metrics.logistic4(x, 4.5, 1.2, 1.0, 0.8)
    curve = metrics.logistic4_fit(x, y)
    np.testing.assert_allclose(curve(x), y, atol=1e-6)
    assert metrics.plcc(x, y, fit="logistic4") == pytest.approx(1.0, abs=1e-9)
    assert metrics.rmse(x, y, fit="logistic4") < 1e-6
    assert metrics.plcc(x, y, fit=None) < 0.99  # the raw relation is clearly non-linear


def test_logistic5_fit_improves_on_a_sigmoid():
    x = np.linspace(0, 10, 80)
    y = metrics.logistic5(x, 3.0, 1.5, 5.0, 0.05, 2.0)
    curve = metrics.logistic5_fit(x, y)
    assert curve.kind == "logistic5" and curve.fallback_reason is None
    assert metrics.plcc(x, y, fit="logistic5") > max(metrics.plcc(x, y), 0.999)


def test_failed_logistic_fit_falls_back_to_linear_and_says_so(monkeypatch):
    def failing_fit(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(metrics, "curve_fit", failing_fit)
    pred = np.array([0.0, 1.0, 2.0, 3.0])
    mos = np.array([1.0, 3.0, 5.0, 7.0])
    result = metrics.performance(pred, mos, fit="logistic4")
    assert result["fit"] == "logistic4" and result["fit_used"] == "linear"
    assert "logistic4 fit failed" in result["fit_fallback"]
    assert result["fit_params"] == pytest.approx([2.0, 1.0])
    assert result["RMSE"] == pytest.approx(0.0, abs=1e-12)


def test_too_few_items_for_a_logistic_fall_back_to_linear():
    result = metrics.performance([1.0, 2.0, 4.0], [2.0, 1.0, 3.0], fit="logistic4")
    assert result["fit_used"] == "linear" and "at least 4 items, got 3" in result["fit_fallback"]
    assert metrics.performance([1.0, 2.0], [2.0, 1.0], fit="logistic5")["PLCC"] == pytest.approx(1.0)


def test_constant_predictions_give_nan_correlations():
    result = metrics.performance([1.0] * 6, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert np.isnan(result["SRCC"]) and np.isnan(result["PLCC"])
    assert result["RMSE"] == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), abs=1e-6)


def test_performance_without_fit_is_raw():
    rng = np.random.default_rng(1)
    pred, mos = rng.normal(size=30), rng.normal(size=30)
    result = metrics.performance(pred, mos, fit=None)
    assert result["fit"] == "none" and result["fit_params"] is None
    assert result["PLCC"] == pytest.approx(metrics.plcc(pred, mos), abs=1e-15)


# ---- unit: NTIRE score


def test_ties_count_as_first_is_better():
    scores = {"a": 2.0, "b": 2.0, "c": 1.0}
    assert metrics.pairwise_accuracy(scores, [RankPair("a", "b", 1)]) == 1.0
    assert metrics.pairwise_accuracy(scores, [RankPair("a", "b", 2)]) == 0.0
    assert metrics.pairwise_accuracy(scores, [RankPair("c", "a", 2), RankPair("c", "a", 1)]) == 0.5


def test_ntire_score_formula_and_alignment_by_name():
    truth = {"v1": 1.0, "v2": 2.0, "v3": 3.0, "v4": 4.5}
    pred = {"v4": 4.0, "v3": 2.5, "v1": 0.5, "v2": 2.4, "extra": 9.0}  # other order, one unlabelled name
    non = [RankPair("v1", "v4", 2), RankPair("v4", "v2", 2)]
    src = [RankPair("v3", "v2", 1)]
    got = metrics.ntire2024_score(pred, truth, non, src)
    names = list(truth)
    p = [pred[n] for n in names]
    t = [truth[n] for n in names]
    assert got["SROCC"] == pytest.approx(1.0)
    assert got["PLCC"] == pytest.approx(np.corrcoef(p, t)[0, 1], abs=1e-12)
    assert (got["Rank1"], got["Rank2"]) == (0.5, 1.0)
    assert got["score"] == pytest.approx(0.45 * got["SROCC"] + 0.45 * got["PLCC"] + 0.05 * 0.5 + 0.05 * 1.0)


def test_ntire_score_missing_names_are_input_errors():
    truth = {"v1": 1.0, "v2": 2.0, "v3": 3.0}
    pairs = [RankPair("v1", "v2", 2)]
    with pytest.raises(InputError, match="v3"):
        metrics.ntire2024_score({"v1": 1.0, "v2": 2.0}, truth, pairs, pairs)
    with pytest.raises(InputError, match="zz"):
        metrics.ntire2024_score({"v1": 1.0, "v2": 2.0, "v3": 3.0}, truth, [RankPair("v1", "zz", 1)], pairs)
    with pytest.raises(InputError, match="no source pairs"):
        metrics.ntire2024_score({"v1": 1.0, "v2": 2.0, "v3": 3.0}, truth, pairs, [])


# ---- rank-pair files


def _write_workbook(path, sheets):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append(["video_name1", "video_name2", "video_rank"])
        for row in rows:
            sheet.append(row)
    book.save(path)


def test_workbook_first_row_is_a_header_and_columns_are_positional(tmp_path):
    path = tmp_path / "pairs.xlsx"
    _write_workbook(
        path, {"source": [["a.mp4", "b.mp4", 2]], "nonsource": [["c.mp4", "d.mp4", 1.0]], "x": []}
    )
    pairs = read_rank_pairs(path)
    assert pairs == {"nonsource": [RankPair("c.mp4", "d.mp4", 1)], "source": [RankPair("a.mp4", "b.mp4", 2)]}


def test_bad_rank_pair_files(tmp_path):
    path = tmp_path / "pairs.xlsx"
    _write_workbook(path, {"nonsource": [["a", "b", 1]]})
    with pytest.raises(InputError, match="no sheet named 'source'"):
        read_rank_pairs(path)
    _write_workbook(path, {"nonsource": [["a", "b", 1]], "source": [["a", "b", 3]]})
    with pytest.raises(InputError, match="row 2: rank is 3"):
        read_rank_pairs(path)
    short = tmp_path / "pairs.json"
    short.write_text(json.dumps({"nonsource": [["a", "b", 1]], "source": [["c", "d", "2"]]}))
    assert read_rank_pairs(short)["source"] == [RankPair("c", "d", 2)]
    short.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        read_rank_pairs(short)
    with pytest.raises(InputError, match="not found"):
        read_rank_pairs(tmp_path / "missing.xlsx")
    (tmp_path / "pairs.txt").write_text("a,b,1\n")
    with pytest.raises(InputError, match=r"\.xlsx workbook or a \.json"):
        read_rank_pairs(tmp_path / "pairs.txt")


# ---- losses


def test_plcc_loss_identity_on_random_data():
    gen = torch.Generator().manual_seed(0)
    for n in (2, 3, 7, 64, 500):
        for _ in range(5):
            pred = torch.randn(n, generator=gen, dtype=torch.float64)
            target = 0.7 * pred + torch.randn(n, generator=gen, dtype=torch.float64)
            rho = torch.corrcoef(torch.stack([pred, target]))[0, 1]
            expected = (1 - rho) * (3 + rho) / 8
            assert plcc_loss(pred, target).item() == pytest.approx(expected.item(), abs=1e-7)
            assert plcc_loss(target, pred).item() == pytest.approx(expected.item(), abs=1e-7)


def test_plcc_loss_extremes_and_gradients():
    x = torch.linspace(0, 1, 8, dtype=torch.float64)
    assert plcc_loss(x, 3 * x + 1).item() == pytest.approx(0.0, abs=1e-6)  # rho = 1 (up to the 1e-8 eps)
    assert plcc_loss(x, -x).item() == pytest.approx(0.5, abs=1e-6)  # rho = -1: (2)(2)/8
    one = torch.tensor([2.0], requires_grad=True)
    loss = plcc_loss(one, torch.tensor([3.0]))
    loss.backward()
    assert loss.item() == 0.0 and one.grad.abs().max().item() == 0.0  # as the official code
    pred = torch.randn(16, dtype=torch.float64, requires_grad=True)
    plcc_loss(pred, torch.randn(16, dtype=torch.float64)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().max() > 0


def test_mse_mae_and_registry():
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 1.0])
    assert mse_loss(pred, target).item() == pytest.approx((0 + 1 + 9) / 3)
    assert mae_loss(pred, target).item() == pytest.approx((0 + 1 + 3) / 3)
    assert get_loss("plcc") is plcc_loss and get_loss("MSE") is mse_loss and get_loss("mae") is mae_loss
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("huber")


def _official_logistic(x, b1, b2, b3, b4):
    # the official performance_fit's logistic_func, operation by operation
    part = 1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4))))
    return b2 + np.divide(b1 - b2, part)


@pytest.mark.parametrize("seed", [0, 9, 35])
def test_logistic4_fit_follows_the_official_floating_point_path(seed):
    # seed 9 moved 4.5e-6 away from the official fit when logistic4 used special.expit
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(seed)
    mos = rng.uniform(1, 5, 200)
    pred = mos * rng.uniform(0.5, 2) + rng.normal(0, 0.6, 200) + rng.uniform(-3, 3)
    with np.errstate(over="ignore"):
        popt, _ = curve_fit(
            _official_logistic, pred, mos, p0=[mos.max(), mos.min(), pred.mean(), 0.5], maxfev=100_000_000
        )
        official = _official_logistic(pred, *popt)
    fitted, curve = metrics.fit_predictions(pred, mos, "logistic4")
    assert curve.kind == "logistic4"
    np.testing.assert_allclose(fitted, official, rtol=0, atol=1e-12)


def test_logistic4_far_out_predictions_reach_the_floor_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp() overflows here; the warning must not escape
        y = metrics.logistic4(np.array([-1e4, 0.0, 1e4]), 4.5, 1.2, 0.0, 0.5)
    assert y[0] == 1.2 and y[1] == pytest.approx(2.85) and y[2] == 4.5

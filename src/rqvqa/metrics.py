"""Quality-assessment metrics: SRCC, KRCC, PLCC, RMSE with the VQEG logistic fits, and the NTIRE 2024 S-UGC
(KVQ challenge) score.

Conventions follow the official code (see docs/evaluation.md):

- SRCC and KRCC (Kendall tau-b) are computed on the raw predictions.
- PLCC and RMSE are computed on ``f(pred)`` where ``f`` is a fitted mapping chosen by ``fit``:
  ``None`` (raw, the KVQ challenge scorer), ``"logistic4"`` (RQ-VQA / SimpleVQA / VIDEVAL ``performance_fit``:
  p0 = [max(mos), min(mos), mean(pred), 0.5], |beta4|, maxfev 1e8) or ``"logistic5"`` (Sheikh et al. 2006
  form, pyiqa's initial values).
- The fit is in-sample: fitted on the same predictions and labels that are then scored.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from rqvqa.errors import ConfigError, InputError

FITS = ("none", "logistic4", "logistic5")

# NTIRE 2024 S-UGC final score weights (official metric_score.py; RQ-VQA paper Eq. 14).
NTIRE2024_WEIGHTS = {"SROCC": 0.45, "PLCC": 0.45, "Rank1": 0.05, "Rank2": 0.05}


def _as_array(values) -> np.ndarray:
    # Torch tensors (possibly on a GPU, possibly requiring grad) are accepted without importing torch here.
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _as_pair(pred, mos) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert a (prediction, label) pair to 1-D float64 arrays (lists, arrays or tensors)."""
    p, m = _as_array(pred), _as_array(mos)
    if p.shape != m.shape:
        raise InputError(f"predictions and labels differ in length ({p.size} vs {m.size})")
    if p.size < 2:
        raise InputError(f"at least 2 items are needed for correlations, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(m).all()):
        raise InputError("predictions and labels must be finite numbers (found NaN or inf)")
    return p, m


def _quiet_corr(func, a: np.ndarray, b: np.ndarray) -> float:
    # A constant input makes every correlation undefined: scipy warns and returns NaN; we return NaN quietly
    # so that a degenerate model during training does not flood the log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(func(a, b)[0])


def srcc(pred, mos) -> float:
    """Spearman rank-order correlation on raw predictions (ties get average ranks)."""
    p, m = _as_pair(pred, mos)
    return _quiet_corr(stats.spearmanr, p, m)


def krcc(pred, mos) -> float:
    """Kendall rank correlation, tau-b (SciPy's default variant, as the official code uses)."""
    p, m = _as_pair(pred, mos)
    return _quiet_corr(stats.kendalltau, p, m)


# -------------------------------------------------------------------------------------------- logistic fits


def logistic4(x, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG 4-parameter logistic with the |beta4| slope of the official performance_fit.

    The operations are the official ones in the official order,
    b2 + (b1 - b2) / (1 + exp(-((x - b3) / |b4|))): any other form (e.g. `special.expit`) rounds differently,
    and Levenberg-Marquardt amplifies that into fitted values ~1e-5 away from the official ones. exp()
    overflows to inf for far-out trial parameters, which gives the right limit (b2); the warning is silenced,
    not the arithmetic changed."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        logistic_part = 1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4))))
    return b2 + np.divide(b1 - b2, logistic_part)


def logistic5(x, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """Sheikh et al. (2006) 5-parameter logistic: b1 * (0.5 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5."""
    x = np.asarray(x, dtype=np.float64)
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def _linear(x, a: float, b: float) -> np.ndarray:
    return a * np.asarray(x, dtype=np.float64) + b


_CURVES = {"logistic4": logistic4, "logistic5": logistic5, "linear": _linear}


@dataclass(frozen=True)
class CurveFit:
    """A fitted monotone mapping from predictions to the label scale.

    ``kind`` is the curve actually used: the requested logistic, or ``"linear"`` when the logistic fit failed,
    in which case ``fallback_reason`` says why.
    """

    kind: str
    params: tuple[float, ...]
    fallback_reason: str | None = None

    def __call__(self, x) -> np.ndarray:
        return _CURVES[self.kind](x, *self.params)


def _fit_curve(kind: str, p: np.ndarray, m: np.ndarray, p0: list[float], maxfev: int | None) -> CurveFit:
    if p.size < len(p0):
        return _linear_fit(
            p, m, f"{kind} fit needs at least {len(p0)} items, got {p.size}; used a linear fit"
        )
    kwargs = {} if maxfev is None else {"maxfev": maxfev}
    try:
        # Overflow in exp() for far-off trial parameters and an inestimable covariance are harmless here: only
        # the parameter values are used.
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, _ = curve_fit(_CURVES[kind], p, m, p0=p0, **kwargs)
        if not np.isfinite(popt).all():
            raise RuntimeError("fit produced non-finite parameters")
        return CurveFit(kind, tuple(float(v) for v in popt))
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        return _linear_fit(p, m, f"{kind} fit failed ({exc}); used a linear fit")


def _linear_fit(p: np.ndarray, m: np.ndarray, reason: str) -> CurveFit:
    if np.ptp(p) == 0:
        return CurveFit("linear", (0.0, float(m.mean())), reason)
    a, b = np.polyfit(p, m, 1)
    return CurveFit("linear", (float(a), float(b)), reason)


def logistic4_fit(pred, mos) -> CurveFit:
    """4-parameter logistic fit as RQ-VQA/SimpleVQA/VIDEVAL: p0 = [max(mos), min(mos), mean(pred), 0.5],
    Levenberg-Marquardt (``curve_fit`` default), maxfev 1e8. Falls back to a linear fit on failure."""
    p, m = _as_pair(pred, mos)
    p0 = [float(m.max()), float(m.min()), float(p.mean()), 0.5]
    return _fit_curve("logistic4", p, m, p0, maxfev=100_000_000)


def logistic5_fit(pred, mos) -> CurveFit:
    """5-parameter logistic fit with pyiqa's (DBCNN's) initial values p0 = [10, 0, mean(mos), 0.1, 0.1] and
    ``curve_fit``'s default maxfev. Falls back to a linear fit on failure."""
    p, m = _as_pair(pred, mos)
    p0 = [10.0, 0.0, float(m.mean()), 0.1, 0.1]
    return _fit_curve("logistic5", p, m, p0, maxfev=None)


def _normalise_fit(fit: str | None) -> str:
    name = "none" if fit is None else str(fit).lower()
    if name not in FITS:
        raise ConfigError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    return name


def fit_predictions(pred, mos, fit: str | None = "logistic4") -> tuple[np.ndarray, CurveFit | None]:
    """``(mapped predictions, curve)``; with ``fit=None``/``"none"`` the raw predictions and ``None``."""
    name = _normalise_fit(fit)
    p, m = _as_pair(pred, mos)
    if name == "none":
        return p, None
    curve = logistic4_fit(p, m) if name == "logistic4" else logistic5_fit(p, m)
    return curve(p), curve


def plcc(pred, mos, fit: str | None = None) -> float:
    """Pearson linear correlation of ``f(pred)`` with the labels (``fit=None``: raw predictions)."""
    mapped, _ = fit_predictions(pred, mos, fit)
    return _quiet_corr(stats.pearsonr, mapped, _as_array(mos))


def rmse(pred, mos, fit: str | None = None) -> float:
    """Root-mean-square error of ``f(pred)`` against the labels (``fit=None``: raw predictions)."""
    mapped, _ = fit_predictions(pred, mos, fit)
    return float(np.sqrt(np.mean((mapped - _as_array(mos)) ** 2)))


def performance(pred, mos, fit: str | None = "logistic4") -> dict:
    """PLCC, SRCC, KRCC, RMSE as the official ``performance_fit`` (default ``fit="logistic4"``).

    Returns a JSON-friendly dict: the four metrics, ``n``, ``fit`` (the requested fit), ``fit_used`` (the
    curve actually used: ``none``, the logistic, or ``linear`` after a failed fit), ``fit_params``,
    ``fit_fallback`` (the reason for a fallback, else ``None``) and ``fit_direction`` (`fit_direction`).
    """
    name = _normalise_fit(fit)
    p, m = _as_pair(pred, mos)
    mapped, curve = fit_predictions(p, m, name)
    return {
        "PLCC": _quiet_corr(stats.pearsonr, mapped, m),
        "SRCC": _quiet_corr(stats.spearmanr, p, m),
        "KRCC": _quiet_corr(stats.kendalltau, p, m),
        "RMSE": float(np.sqrt(np.mean((mapped - m) ** 2))),
        "n": int(p.size),
        "fit": name,
        "fit_used": "none" if curve is None else curve.kind,
        "fit_params": None if curve is None else list(curve.params),
        "fit_fallback": None if curve is None else curve.fallback_reason,
        "fit_direction": fit_direction(curve, p),
    }


def fit_direction(curve: CurveFit | None, pred) -> str | None:
    """Whether the fitted mapping rises or falls over the predictions' range: ``"increasing"``,
    ``"decreasing"`` (the fit reversed the predictions' order: PLCC and RMSE are then those of the reversed
    ranking, while SRCC and KRCC, on the raw predictions, keep their sign), ``"flat"``; None without a fit."""
    if curve is None:
        return None
    p = _as_array(pred)
    with np.errstate(all="ignore"):
        low, high = (float(v) for v in curve(np.array([p.min(), p.max()])))
    return "increasing" if high > low else "decreasing" if high < low else "flat"


# ------------------------------------------------------------------------------------------ NTIRE 2024 score


@dataclass(frozen=True)
class RankPair:
    """An annotated pair: ``rank`` is 1 when ``first`` is the better video, 2 when ``second`` is."""

    first: str
    second: str
    rank: int


def _lookup(scores: Mapping[str, float], names: Sequence[str], what: str) -> list[float]:
    missing = [n for n in names if n not in scores]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"{len(missing)} {what} missing from the predictions: {shown}")
    return [float(scores[n]) for n in names]


def pairwise_accuracy(
    pred_by_name: Mapping[str, float], pairs: Sequence[RankPair], what: str = "pair"
) -> float:
    """Fraction of pairs whose predicted order matches the label; predicted rank is 1 when
    score(first) >= score(second), so a tie counts as "first is better" (official rule)."""
    if not pairs:
        raise InputError(f"no {what} pairs given")
    names = [n for pair in pairs for n in (pair.first, pair.second)]
    values = _lookup(pred_by_name, names, f"{what}-pair videos")
    hits = 0
    for k, pair in enumerate(pairs):
        predicted = 1 if values[2 * k] >= values[2 * k + 1] else 2
        hits += predicted == pair.rank
    return hits / len(pairs)


def ntire2024_score(
    pred_by_name: Mapping[str, float],
    truth_by_name: Mapping[str, float],
    nonsource_pairs: Sequence[RankPair],
    source_pairs: Sequence[RankPair],
) -> dict:
    """NTIRE 2024 S-UGC (KVQ) final score = 0.45 SROCC + 0.45 PLCC + 0.05 Rank1 + 0.05 Rank2.

    SROCC/PLCC are computed on raw predictions (no fit) aligned to the truth by file name; Rank1 is the
    accuracy on non-source pairs (different sources), Rank2 on same-source pairs. Predictions for names not in
    the truth are ignored; a truth or pair name without a prediction raises InputError.
    """
    names = list(truth_by_name)
    pred = _lookup(pred_by_name, names, "labelled videos")
    truth = [float(truth_by_name[n]) for n in names]
    p, t = _as_pair(pred, truth)
    result = {
        "SROCC": _quiet_corr(stats.spearmanr, t, p),
        "PLCC": _quiet_corr(stats.pearsonr, t, p),
        "Rank1": pairwise_accuracy(pred_by_name, nonsource_pairs, "nonsource"),
        "Rank2": pairwise_accuracy(pred_by_name, source_pairs, "source"),
    }
    # Summed left to right in the official order so the float result is the same.
    result["score"] = sum(w * result[k] for k, w in NTIRE2024_WEIGHTS.items())
    result["n"] = len(names)
    result["n_nonsource_pairs"] = len(nonsource_pairs)
    result["n_source_pairs"] = len(source_pairs)
    return result

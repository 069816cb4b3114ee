"""Predictions against labels: the metrics that `rqvqa evaluate` prints and the HTML report shows."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rqvqa.data.labels import match_by_name
from rqvqa.errors import InputError
from rqvqa.metrics import RankPair, ntire2024_score, performance, plcc

#: the largest magnitude a prediction or label may have: beyond it squares and the logistic fit overflow
#: double precision (1e308 gave a null RMSE and PLCC), and no quality scale comes near it
MAX_MAGNITUDE = 1e12


def _check_values(values: Mapping[str, float], what: str) -> None:
    """InputError naming the first video whose value is not a finite number of sensible size."""
    for name, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value)):
            raise InputError(f"the {what} of {name} is {value}, not a finite number")
        if abs(value) > MAX_MAGNITUDE:
            raise InputError(
                f"the {what} of {name} is {value:g}: beyond +-{MAX_MAGNITUDE:g}, where the metrics overflow "
                "(no quality scale comes near it; fix or remove it)"
            )


def direction_notes(metrics: Mapping, lower_better: bool | None, model: str = "the model") -> list[str]:
    """What a reader must know beside the official figures: the fit reversed the ranking, or the model's
    scale runs the other way (lower is better: a good model has negative SRCC and KRCC)."""
    notes = []
    if lower_better:
        notes.append(
            f"{model}: lower scores mean better quality, so a good model has a negative SRCC and KRCC "
            "against MOS and a decreasing fit; PLCC after the fit is positive either way"
        )
    if metrics.get("fit_direction") == "decreasing" and not lower_better:
        notes.append(
            f"the fitted {metrics['fit_used']} is decreasing: it reversed the predictions' ranking (SRCC "
            f"{metrics['SRCC']:.4f} on the raw predictions), so PLCC {metrics['PLCC']:.4f} and RMSE are "
            "those of the reversed predictions; the official figures are kept as computed"
        )
    elif metrics.get("fit_direction") == "increasing" and lower_better:
        notes.append(
            f"the fitted {metrics['fit_used']} is increasing for a lower-is-better model: higher scores were "
            "mapped to higher MOS, the reverse of the model's own direction"
        )
    return notes


def evaluate_scores(
    pred_by_path: Mapping[str, float],
    truth_by_name: Mapping[str, float],
    *,
    fit: str = "logistic4",
    rank_pairs: Mapping[str, list[RankPair]] | None = None,
) -> dict:
    """Match predictions (keyed by path) to labels (keyed by name or id, `match_by_name`) and compute
    SRCC/KRCC (raw), PLCC/RMSE (after `fit`), the raw PLCC and, with `rank_pairs` (``nonsource``/``source``),
    the NTIRE 2024 score. Every label needs a prediction (InputError naming the missing ones).

    Returns ``{"metrics", "ignored_predictions", "pairs"}``, plus ``"ntire2024"`` with rank pairs;
    ``pairs`` is ``[(label name, prediction path, prediction, label)]`` in label order (a scatter plot's
    points)."""
    _check_values(truth_by_name, "label")
    if len(set(truth_by_name.values())) < 2:
        raise InputError(
            f"every label is {next(iter(truth_by_name.values()))}: correlations need labels that differ"
        )
    matched = match_by_name(dict(pred_by_path), dict(truth_by_name))
    _check_values({path: pred_by_path[path] for path in matched.values()}, "prediction")
    missing = [name for name in truth_by_name if name not in matched]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InputError(f"no prediction for {len(missing)} labelled videos ({shown})")
    # predictions under the labels' names, so that rank pairs (named as the labels) find them
    pred_by_name = {label: pred_by_path[path] for label, path in matched.items()}
    names = list(truth_by_name)
    pred = [pred_by_name[n] for n in names]
    truth = [truth_by_name[n] for n in names]
    metrics = performance(pred, truth, fit=fit)
    metrics["PLCC_raw"] = plcc(pred, truth, fit=None)
    report = {
        "metrics": metrics,
        "ignored_predictions": len(pred_by_path) - len(names),
        "pairs": [(n, matched[n], p, t) for n, p, t in zip(names, pred, truth, strict=True)],
    }
    if rank_pairs is not None:
        try:
            report["ntire2024"] = ntire2024_score(
                pred_by_name, dict(truth_by_name), rank_pairs["nonsource"], rank_pairs["source"]
            )
        except InputError as exc:
            raise InputError(f"{exc.reason} (in the rank pairs)") from None
    return report

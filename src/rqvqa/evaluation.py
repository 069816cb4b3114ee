"""Predictions against labels: the metrics that `rqvqa evaluate` prints and the HTML report shows."""

from __future__ import annotations

from collections.abc import Mapping

from rqvqa.data.labels import match_by_name
from rqvqa.errors import InputError
from rqvqa.metrics import RankPair, ntire2024_score, performance, plcc


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
    matched = match_by_name(dict(pred_by_path), dict(truth_by_name))
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

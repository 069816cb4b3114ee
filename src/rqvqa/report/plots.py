"""The report's figures as static SVG from matplotlib, inlined in the HTML.

Why static SVG and not Plotly: a report is read offline, archived, attached to tickets and printed. SVG needs
no JavaScript and no 3.5 MB bundle per file (Plotly's offline bundle), stays sharp when zoomed, keeps text as
text (searchable, and checkable by tests), and matplotlib is a library the scientific users already have.
What is lost is hover: the report lists the numbers next to every figure instead.
"""

from __future__ import annotations

import functools
import io
import itertools
import re

import numpy as np

from rqvqa.errors import ConfigError
from rqvqa.metrics import CurveFit
from rqvqa.report.keyframes import Axis

_COUNTER = itertools.count()
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


#: every text is shown as written: a model name or a manifest value with `$` signs is not mathtext (matplotlib
#: reads `$\\frac{a}{$` as maths and fails); the flag is read when a text is created and when it is drawn
PLAIN_TEXT = {"text.parse_math": False}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("the HTML report needs matplotlib (pip install 'rqvqa[report]')") from None
    # Figure, not pyplot: no global state, safe in the service's worker threads
    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def _plain(draw):
    """Run a figure function with `PLAIN_TEXT` (texts made inside it are never parsed as maths)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context(PLAIN_TEXT):
            return draw(*args, **kwargs)

    return wrapper


def to_svg(fig) -> str:
    """The figure as an <svg> element for inlining in HTML5: no XML prolog, DOCTYPE or metadata (they name
    external URLs), ids made unique per figure so that several figures can share one page."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": f"rqvqa-fig-{next(_COUNTER)}", **PLAIN_TEXT}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.strip()


@_plain
def distribution(scores_by_model: dict[str, list[float]]) -> str:
    """One histogram per model (models have different scales), with the median marked."""
    from matplotlib.ticker import MaxNLocator

    n = len(scores_by_model)
    fig = _figure(4.2 * n, 2.8)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, color, (model, scores) in zip(
        axes, itertools.cycle(COLORS), scores_by_model.items(), strict=False
    ):
        values = np.asarray(scores, dtype=float)
        ax.hist(values, bins=min(30, max(5, values.size // 3)), color=color, alpha=0.8)
        ax.axvline(float(np.median(values)), color="black", linestyle="--", linewidth=1, label="median")
        ax.set_title(f"{model} (n={values.size})")
        ax.set_xlabel("score")
        ax.set_ylabel("videos")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of videos
        ax.legend(loc="upper right", fontsize=8)
    return to_svg(fig)


@_plain
def per_second_curve(per_second: list[float | None], highlight: list[int], title: str, axis: Axis) -> str:
    """A video's per-second scores (gaps where a second has none) with the highlighted seconds marked, on the
    y range `axis` (the model's scale, or a minimum span: said under the plot)."""
    fig = _figure(4.6, 2.0)
    ax = fig.subplots()
    y = np.array([np.nan if s is None else s for s in per_second], dtype=float)
    x = np.arange(y.size)
    ax.plot(x, y, marker="o", markersize=3, linewidth=1.2, color=COLORS[0])
    marked = [k for k in highlight if k < y.size]
    if marked:
        ax.plot(marked, y[marked], linestyle="none", marker="o", markersize=7, color=COLORS[1], label="worst")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(axis.low, axis.high)
    ax.ticklabel_format(axis="y", useOffset=False)  # a nearly flat curve keeps readable tick labels
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"second ({axis.label})", fontsize=8)
    ax.tick_params(labelsize=7)
    return to_svg(fig)


@_plain
def artifact_curves(curves: dict[str, list[float | None]], threshold: float, title: str, unit: str) -> str:
    """Per-second levels of one artifact in several videos (labelled by name), with the detection threshold
    as a dashed line."""
    fig = _figure(4.6, 2.2)
    ax = fig.subplots()
    top = threshold
    for color, (name, levels) in zip(itertools.cycle(COLORS), curves.items(), strict=False):
        y = np.array([np.nan if v is None else v for v in levels], dtype=float)
        if np.isfinite(y).any():
            top = max(top, float(np.nanmax(y)))
        ax.plot(np.arange(y.size), y, marker="o", markersize=3, linewidth=1.2, color=color, label=name)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8, label="threshold")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, top * 1.15)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("second", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(loc="best", fontsize=6)
    return to_svg(fig)


@_plain
def scatter(pred: list[float], mos: list[float], curve: CurveFit | None, title: str) -> str:
    """Predictions against labels, with the fitted mapping drawn over the prediction range."""
    fig = _figure(4.6, 3.6)
    ax = fig.subplots()
    p, m = np.asarray(pred, dtype=float), np.asarray(mos, dtype=float)
    ax.scatter(p, m, s=14, alpha=0.7, color=COLORS[0], label="videos")
    if curve is not None:
        xs = np.linspace(p.min(), p.max(), 200)
        ax.plot(xs, curve(xs), color=COLORS[1], linewidth=1.5, label=f"fitted {curve.kind}")
    ax.set_xlabel("prediction")
    ax.set_ylabel("MOS")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return to_svg(fig)


@_plain
def groups(values_by_group: dict[str, list[float]], title: str) -> str:
    """Box plots of scores per group (a manifest column's values)."""
    fig = _figure(max(3.5, 0.8 * len(values_by_group) + 1.5), 2.8)
    ax = fig.subplots()
    ax.boxplot(list(values_by_group.values()), tick_labels=list(values_by_group))
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("score")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return to_svg(fig)

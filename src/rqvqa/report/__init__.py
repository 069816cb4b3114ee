"""The HTML report (`rqvqa report`): score distributions, worst/best videos with per-second curves and key
frames, accuracy against labels, breakdowns by manifest column; one self-contained file."""

from rqvqa.report.build import build_report

__all__ = ["build_report"]

"""`stats`: a weight-free per-key-frame source of colour, contrast and sharpness statistics (12 values), so
the extract -> store -> train path runs without pre-trained weights (`rqvqa.families.stats.source`)."""

from rqvqa.registry import SourceCard

SOURCES = (
    SourceCard(
        name="stats", family="stats", source="rqvqa.families.stats.source:FrameStatistics", dim=12, extra=None
    ),
)

"""Frozen feature sources (one module each) and their registry."""

from rqvqa.sources.base import FeatureSource, Granularity, available_sources, create_source, register_source

__all__ = ["FeatureSource", "Granularity", "available_sources", "create_source", "register_source"]

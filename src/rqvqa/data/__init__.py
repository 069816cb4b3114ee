"""Datasets: the manifest format, adapters for published label files, splits, score and rank-pair tables."""

from rqvqa.data.adapters import ADAPTERS, build_manifest
from rqvqa.data.labels import read_rank_pairs, read_scores
from rqvqa.data.manifest import Manifest, ManifestRow, read_manifest, write_manifest
from rqvqa.data.splits import Split, make_splits, official_split, random_group_split

__all__ = [
    "ADAPTERS",
    "Manifest",
    "ManifestRow",
    "Split",
    "build_manifest",
    "make_splits",
    "official_split",
    "random_group_split",
    "read_manifest",
    "read_rank_pairs",
    "read_scores",
    "write_manifest",
]

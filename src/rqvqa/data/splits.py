"""Train/test splits that never separate a group (a source and its processed versions, or a scene).

Random splits follow RQ-VQA's ``data_loader.py`` for KVQ, generalised to any grouping:

1. experiment i uses the seed ``(i + 1) * seed_base`` (``i`` when ``seed_base`` is 0);
2. numpy's legacy ``RandomState(seed).permutation(G)`` orders the G groups, numbered by first appearance;
3. the first ``int(G * ratio)`` groups train, the rest test; each group adds its rows in manifest order.

On KVQ's ``train_data.csv`` (418 groups of 7 consecutive rows) this reproduces RQ-VQA's split exactly
(row index = group * 7 + k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rqvqa.data.manifest import Manifest
from rqvqa.errors import ConfigError, InputError


@dataclass(frozen=True)
class Split:
    """One split: row indices into the manifest. ``seed`` is None for an official split."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    seed: int | None = None


def group_rows(manifest: Manifest) -> list[list[int]]:
    """Row indices of each group, groups in order of first appearance, rows in manifest order."""
    by_group: dict[str, list[int]] = {}
    for k, row in enumerate(manifest):
        by_group.setdefault(row.group, []).append(k)
    return list(by_group.values())


def split_seed(i: int, seed_base: int = 10) -> int:
    """The seed of experiment ``i``: ``(i + 1) * seed_base``, or ``i`` when ``seed_base`` is 0."""
    return (i + 1) * seed_base if seed_base else i


def random_group_split(manifest: Manifest, seed: int, ratio: float = 0.8) -> Split:
    """One seeded group-aware split (see the module docstring for the exact procedure)."""
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"train ratio must be between 0 and 1, got {ratio}")
    groups = group_rows(manifest)
    n_train = int(len(groups) * ratio)
    if n_train == 0 or n_train == len(groups):
        raise InputError(
            f"{len(groups)} groups cannot be split {ratio:.0%}/{1 - ratio:.0%} with both parts non-empty",
            manifest.source,
        )
    order = np.random.RandomState(seed).permutation(len(groups))
    train = tuple(k for g in order[:n_train] for k in groups[g])
    test = tuple(k for g in order[n_train:] for k in groups[g])
    return Split(name=f"seed{seed}", train=train, test=test, seed=seed)


def make_splits(manifest: Manifest, n: int, seed_base: int = 10, ratio: float = 0.8) -> list[Split]:
    """``n`` group-aware random splits with the official seeds ``(i + 1) * seed_base``."""
    if n < 1:
        raise ConfigError(f"number of splits must be at least 1, got {n}")
    return [random_group_split(manifest, split_seed(i, seed_base), ratio) for i in range(n)]


def official_split(manifest: Manifest, train: str = "train", test: str = "test") -> Split:
    """The split given by the manifest's ``split`` column (e.g. LSVQ train -> test or test_1080p)."""
    present = sorted({r.split for r in manifest if r.split})
    if not present:
        raise InputError("the manifest has no split column values (no official split)", manifest.source)
    for name in (train, test):
        if name not in present:
            raise InputError(f"no rows with split {name!r} (found: {', '.join(present)})", manifest.source)
    train_rows = tuple(k for k, r in enumerate(manifest) if r.split == train)
    test_rows = tuple(k for k, r in enumerate(manifest) if r.split == test)
    # A group across both folds would leak; adapters give every official split its own groups.
    shared = {manifest[k].group for k in train_rows} & {manifest[k].group for k in test_rows}
    if shared:
        raise InputError(f"group {sorted(shared)[0]} has rows in both {train} and {test}", manifest.source)
    return Split(name=f"official:{train}/{test}", train=train_rows, test=test_rows)

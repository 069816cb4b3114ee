"""Evidence: the official head (Linear-Linear) with the PLCC loss on KoNViD-1k's published features.

Trains on the 60-d VIDEVAL features, then on BRISQUE (36-d) + VIDEVAL concatenated, over 10 seeded 80/20
splits (seeds 10, 20, ..., 100; every video its own group) and prints the median SRCC / PLCC and the std.
Published VIDEVAL + SVR (median of 100 splits): SRCC 0.7832.

Head-only hyper-parameters (not the video protocol's, which is tuned for fine-tuning Swin-B at lr 1e-5):
Adam lr 1e-3, weight decay 1e-7, StepLR(10, 0.9), 50 epochs, batch 32, features standardised with the
training part's mean/std (NaN -> training mean), the final epoch's model (no selection on the test part).

    python bench/konvid_head.py [--data ../shared/data/konvid1k] [--epochs 50] [--splits 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rqvqa.data.adapters import build_manifest
from rqvqa.data.manifest import Manifest
from rqvqa.train import TrainConfig, load_feature_matrix, train_head_only

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "konvid1k"
HEAD_ONLY = dict(lr=1e-3, epochs=50, batch_size=32, standardise=True, select="last", eval_batch_size=256)


def konvid_features(data: Path, feature_files: list[str]) -> tuple[Manifest, dict[str, np.ndarray]]:
    """KoNViD-1k's manifest (metadata.csv order) and the concatenation of `feature_files` as one source."""
    manifest = build_manifest("konvid1k", data / "metadata.csv", data)
    matrix = np.concatenate([load_feature_matrix(data / f, len(manifest)) for f in feature_files], axis=1)
    return manifest, {"+".join(Path(f).stem.removesuffix("_feats") for f in feature_files): matrix}


def run_head(data: Path, feature_files: list[str], cfg: TrainConfig) -> dict:
    """Train the head on the concatenation of `feature_files` (in `data`); return the split summary."""
    manifest, features = konvid_features(data, feature_files)
    with tempfile.TemporaryDirectory() as out:
        return train_head_only(manifest, features, cfg, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=HEAD_ONLY["epochs"])
    parser.add_argument("--splits", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig(**{**HEAD_ONLY, "epochs": args.epochs}, splits=args.splits, progress=False)
    rows = {}
    for label, files in (
        ("VIDEVAL", ["videval_feats.mat"]),
        ("BRISQUE+VIDEVAL", ["brisque_feats.mat", "videval_feats.mat"]),
    ):
        started = time.perf_counter()
        summary = run_head(args.data, files, cfg)
        rows[label] = summary
        print(
            f"{label:16s} median SRCC {summary['SRCC']['median']:.4f} (std {summary['SRCC']['std']:.4f})  "
            f"median PLCC {summary['PLCC']['median']:.4f} (std {summary['PLCC']['std']:.4f})  "
            f"[{args.splits} splits, {time.perf_counter() - started:.0f} s]"
        )
    gap = rows["BRISQUE+VIDEVAL"]["SRCC"]["median"] - rows["VIDEVAL"]["SRCC"]["median"]
    print(f"BRISQUE+VIDEVAL - VIDEVAL median SRCC: {gap:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

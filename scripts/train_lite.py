"""Measure a KoNViD-1k-only lite regressor on the official VIDEVAL_light480_3fps features (not shipped).

Reads ../shared/data (or --data): `videval/konvid1k_videval_light480_3fps_feats.mat` (the release's
VIDEVAL_light480_3fps features of every KoNViD-1k video, rows in `konvid1k/metadata.csv` order) and the MOS of
`konvid1k/metadata.csv`. Selects (C, gamma) by 5-fold CV on all 1,200 videos, reports the median SRCC / PLCC
(4PL fit) over 10 seeded 80/20 splits (SVR refitted on each training part; the CV on all videos makes them
mildly optimistic, as noted in the docs) and, with --out, fits on all 1,200 videos and writes the regressor
(`rqvqa.families.lite.predictor.LiteModel` JSON). The shipped `lite` uses the released VIDEVAL model instead:
this alternative does not rank re-encodes of a training video consistently (`docs/videval.md`).

    python scripts/train_lite.py [--data DIR] [--out FILE] [--splits 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
FEATURES = Path("videval") / "konvid1k_videval_light480_3fps_feats.mat"
METADATA = Path("konvid1k") / "metadata.csv"


def _names() -> list[str]:
    from rqvqa.families.videval.extract import FEATURE_NAMES

    return [f"videval_light480_{n}" for n in FEATURE_NAMES]


def konvid_training_data(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X (1200, 60): official VIDEVAL_light480_3fps features, MOS (1200,))."""
    from scipy.io import loadmat

    feats = np.asarray(loadmat(str(data / FEATURES))["feats_mat"], dtype=np.float64)
    with open(data / METADATA, newline="") as fh:
        mos = np.array([float(r["mos"]) for r in csv.DictReader(fh)])
    if len(mos) != len(feats):
        raise SystemExit(f"metadata has {len(mos)} rows but the features {len(feats)}")
    return feats, mos


def evaluate(x: np.ndarray, y: np.ndarray, n_splits: int, c: float, gamma: float) -> dict:
    """Median SRCC / PLCC (4PL) over seeded 80/20 splits, the SVR refitted on each training part."""
    from sklearn.model_selection import train_test_split

    from rqvqa.families.lite.fit import fit_lite
    from rqvqa.metrics import performance

    rows = []
    for seed in range(n_splits):
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed)
        model = fit_lite(x_tr, y_tr, c=c, gamma=gamma, features=_names())
        perf = performance(model.predict(x_te), y_te, fit="logistic4")
        rows.append((perf["SRCC"], perf["PLCC"]))
        print(f"  split {seed}: SRCC {perf['SRCC']:.4f} PLCC {perf['PLCC']:.4f}", flush=True)
    srcc, plcc = np.array(rows).T
    return {
        "splits": n_splits,
        "C": c,
        "gamma": gamma,
        "median_SRCC": float(np.median(srcc)),
        "median_PLCC": float(np.median(plcc)),
        "std_SRCC": float(np.std(srcc)),
        "std_PLCC": float(np.std(plcc)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None, help="write the fitted regressor here (JSON)")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="parallel CV workers")
    args = parser.parse_args(argv)
    if not (args.data / FEATURES).is_file() or not (args.data / METADATA).is_file():
        print(f"train_lite: KoNViD-1k features not found under {args.data}; nothing to do.", file=sys.stderr)
        return 0

    from rqvqa.families.lite.fit import fit_lite, select_hyperparameters

    x, y = konvid_training_data(args.data)
    c, gamma = select_hyperparameters(x, y, n_jobs=args.jobs)
    print(f"5-fold CV on all videos selected C={c}, gamma={gamma:.4g}", flush=True)
    scores = evaluate(x, y, args.splits, c, gamma)
    summary = {"eval": scores, "C": c, "gamma": gamma}
    if args.out is not None:
        model = fit_lite(
            x,
            y,
            c=c,
            gamma=gamma,
            meta={
                "trained_on": "KoNViD-1k, all 1200 videos, official VIDEVAL_light480_3fps features",
                "eval_10_splits": scores,
            },
            features=_names(),
        )
        args.out.write_text(json.dumps(model.to_dict(), separators=(",", ":")))
        summary.update(n_support_vectors=int(model.svr.support_vectors.shape[0]), out=str(args.out))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

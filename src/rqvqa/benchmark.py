"""The UGC-VQA feature benchmark (Tu et al., TIP 2021; VIDEVAL / BVQA_Benchmark evaluation scripts).

For split i = 1..n: an 80/20 train/test split (scikit-learn `train_test_split`, `random_state=ceil(8.8 i)`);
the training part is split again 80/20 (`random_state=ceil(6.6 i)`) and an RBF SVR is fitted for every
C in 2^[1..10] and gamma in 2^[-8..1] on MinMax-scaled features; the pair with the lowest validation RMSE
(after a 4-parameter logistic fit) is refitted on the whole training part and scored on the test part
(SRCC/KRCC on raw predictions, PLCC/RMSE after the 4PL fit on the test split). Reported: median and std over
splits. NaN/inf features become 0, as upstream.

Deviations: upstream refits its MinMax scaler inside the grid loop on already scaled data (a no-op after the
first pass; done once here). For the validation RMSE of the grid search the SVR outputs are z-scored before
the 4PL fit: the logistic family is closed under affine maps of its input, so the optimum is the same curve,
but curve_fit from upstream's p0 (slope 0.5) needs ~20x fewer evaluations on unit-scale inputs. It can stop
in a slightly different local optimum, so the selected (C, gamma) may differ from upstream's on some splits.
The test-split metrics use the raw predictions exactly as upstream.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rqvqa.data.labels import SCORE_COLUMNS
from rqvqa.errors import InputError
from rqvqa.metrics import performance

C_GRID = 2.0 ** np.arange(1, 11)
GAMMA_GRID = 2.0 ** np.arange(-8, 2)
METRICS = ("SRCC", "KRCC", "PLCC", "RMSE")


def load_features(path: str | os.PathLike[str]) -> np.ndarray:
    """Feature matrix (n_videos, n_features) from a .mat (`feats_mat`), .npy or headerless/headed .csv."""
    p = Path(path)
    if not p.is_file():
        raise InputError("feature file not found", p)
    suffix = p.suffix.lower()
    try:
        if suffix == ".mat":
            from scipy.io import loadmat

            mat = loadmat(str(p))
            if "feats_mat" not in mat:
                keys = ", ".join(k for k in mat if not k.startswith("__"))
                raise InputError(f"no 'feats_mat' in the .mat (keys: {keys})", p)
            x = np.asarray(mat["feats_mat"], dtype=np.float64)
        elif suffix == ".npy":
            x = np.asarray(np.load(p, allow_pickle=False), dtype=np.float64)
        elif suffix == ".csv":
            x = _numeric_csv(p)
        else:
            raise InputError("unsupported feature file (use .mat with feats_mat, .npy or .csv)", p)
    except InputError:
        raise
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read features ({exc})", p) from None
    if x.ndim != 2 or x.shape[0] < 10:
        raise InputError(
            f"expected a (videos, features) matrix with at least 10 rows, got shape {x.shape}", p
        )
    return x


#: MOS columns of published label files, by name (any case), in order of preference: KoNViD-1k's `mos`,
#: KVQ's `score`, YouTube-UGC's `MOSFull` (`rqvqa.data.labels.SCORE_COLUMNS`), and `scores` / `dmos`
MOS_COLUMNS = (*SCORE_COLUMNS, "scores", "dmos")


def load_mos(path: str | os.PathLike[str], column: str | None = None) -> np.ndarray:
    """MOS vector from a .mat (`MOS` or `mos`), a metadata CSV as published (its MOS column by name:
    `MOS_COLUMNS`; `column` overrides, e.g. `MOSChunk`) or a one-column CSV."""
    p = Path(path)
    if not p.is_file():
        raise InputError("MOS file not found", p)
    try:
        if p.suffix.lower() == ".mat":
            from scipy.io import loadmat

            mat = loadmat(str(p))
            names = (column,) if column else ("MOS", "mos", "scores")
            key = next((k for k in names if k in mat), None)
            if key is None:
                raise InputError(f"no {' / '.join(repr(n) for n in names)} in the .mat", p)
            return np.asarray(mat[key], dtype=np.float64).reshape(-1)
        header, rows = _read_csv(p)
        if column is not None:
            names = [c.strip() for c in header or []]
            if column not in names:
                raise InputError(
                    f"no column {column!r} (columns: {', '.join(names) or 'none, no header'})", p
                )
            j = names.index(column)
            return np.array([float(r[j]) for r in rows])
        names = [c.strip().lower() for c in header or []]
        for name in MOS_COLUMNS:
            if name in names:
                return np.array([float(r[names.index(name)]) for r in rows])
        x = _numeric_csv(p)
        if x.shape[1] == 1:
            return x[:, 0]
        raise InputError(
            f"no MOS column ({' / '.join(MOS_COLUMNS)}; name one with --mos-column), not a one-column CSV",
            p,
        )
    except InputError:
        raise
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read MOS ({exc})", p) from None


def _read_csv(p: Path) -> tuple[list[str] | None, list[list[str]]]:
    """(header or None, data rows); the first row is a header when any of its cells is not a number."""
    with open(p, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise InputError("empty CSV", p)

    def numeric(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    if all(numeric(c) for c in rows[0]):
        return None, rows
    return rows[0], rows[1:]


def _numeric_csv(p: Path) -> np.ndarray:
    """The all-numeric columns of a CSV as a float matrix."""
    _, rows = _read_csv(p)
    width = len(rows[0])
    cols = []
    for j in range(width):
        try:
            cols.append([float(r[j]) for r in rows])
        except (ValueError, IndexError):
            continue
    if not cols:
        raise InputError("no numeric column", p)
    return np.array(cols, dtype=np.float64).T


def _fit_predict(c: float, gamma: float, x_fit, y_fit, x_eval) -> np.ndarray:
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import SVR

    scaler = MinMaxScaler().fit(x_fit)
    model = SVR(kernel="rbf", C=c, gamma=gamma).fit(scaler.transform(x_fit), y_fit)
    return model.predict(scaler.transform(x_eval))


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and b (the RBF kernel's argument, as libsvm forms it:
    |a|^2 + |b|^2 - 2 a.b)."""
    return np.maximum((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T, 0.0)


def _grid_rmses(gamma: float, d_fit: np.ndarray, d_val: np.ndarray, y_fit, y_val) -> list[float]:
    """Validation RMSE of every C in `C_GRID` for one gamma: one RBF Gram matrix, shared by the C values
    (`kernel="precomputed"`: the same SVR as `kernel="rbf"`, up to the kernel's rounding)."""
    from sklearn.svm import SVR

    k_fit, k_val = np.exp(-gamma * d_fit), np.exp(-gamma * d_val)
    out = []
    for c in C_GRID:
        pred = SVR(kernel="precomputed", C=c).fit(k_fit, y_fit).predict(k_val)
        # z-scored predictions: the 4PL family absorbs any affine map of its input, and the fit with
        # upstream's p0 (slope 0.5) converges ~20x faster on unit-scale inputs (see module docstring).
        spread = pred.std()
        z = (pred - pred.mean()) / spread if spread > 0 else pred
        out.append(float(performance(z, y_val, fit="logistic4")["RMSE"]))
    return out


def select_parameters(
    i: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """(C, gamma) of lowest validation RMSE on split `i` of the training data (80/20, seed ceil(6.6 i)).

    The scaler and the pairwise distances are computed once per split and each gamma's Gram matrix once for
    the 10 C values; `n_jobs` > 1 spreads the gammas over processes. `progress(1)` after each gamma."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    x_fit, x_val, y_fit, y_val = train_test_split(
        x_train, y_train, test_size=0.2, random_state=math.ceil(6.6 * i)
    )
    scaler = MinMaxScaler().fit(x_fit)
    s_fit, s_val = scaler.transform(x_fit), scaler.transform(x_val)
    d_fit, d_val = _sq_distances(s_fit, s_fit), _sq_distances(s_val, s_fit)
    args = (d_fit, d_val, y_fit, y_val)
    if n_jobs == 1:
        results = (_grid_rmses(g, *args) for g in GAMMA_GRID)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_grid_rmses)(g, *args) for g in GAMMA_GRID
        )
    rmse = np.full((len(GAMMA_GRID), len(C_GRID)), np.inf)
    for k, row in enumerate(results):
        rmse[k] = row
        if progress:
            progress(1)
    # the first minimum in the order C outer, gamma inner (as upstream's loops)
    best = int(np.argmin(np.nan_to_num(rmse.T.ravel(), nan=np.inf)))
    return float(C_GRID[best // len(GAMMA_GRID)]), float(GAMMA_GRID[best % len(GAMMA_GRID)])


def _scored(i: int, c: float, gamma: float, x_train, y_train, x_test, y_test) -> dict:
    perf = performance(_fit_predict(c, gamma, x_train, y_train, x_test), y_test, fit="logistic4")
    return {"split": i, "C": float(c), "gamma": float(gamma), **{k: float(perf[k]) for k in METRICS}}


def evaluate_split(i: int, x: np.ndarray, y: np.ndarray, n_jobs: int = 1, progress=None) -> dict:
    """One repetition (1-based `i`, seeds as upstream): best (C, gamma) and the test metrics."""
    from sklearn.model_selection import train_test_split

    x = np.where(np.isfinite(x), x, 0.0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=math.ceil(8.8 * i))
    c, gamma = select_parameters(i, x_train, y_train, n_jobs, progress)
    return _scored(i, c, gamma, x_train, y_train, x_test, y_test)


def evaluate_cross(
    i: int,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_jobs: int = 1,
    progress=None,
) -> dict:
    """Cross-dataset repetition `i`: (C, gamma) selected on validation split `i` of the whole training set,
    refitted on all of it, scored on the whole test set."""
    x = np.where(np.isfinite(x), x, 0.0)
    x_test = np.where(np.isfinite(x_test), x_test, 0.0)
    c, gamma = select_parameters(i, x, y, n_jobs, progress)
    return _scored(i, c, gamma, x, y, x_test, y_test)


#: progress steps per split (one per gamma of the grid)
STEPS_PER_SPLIT = len(GAMMA_GRID)


def run_benchmark(
    x: np.ndarray,
    y: np.ndarray,
    n_splits: int = 100,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """All splits; returns {"splits": [...], "median": {...}, "std": {...}, "n_videos", "n_features"}.

    `n_jobs` processes share the splits, or the grid of each split when there are fewer splits than processes;
    `progress(k)` reports k of the `n_splits * STEPS_PER_SPLIT` steps done.

    With `test` = (features, MOS) of another dataset: cross-dataset evaluation, training on all of (x, y) and
    testing on all of `test`; the splits then only vary the validation part that selects (C, gamma).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{x.shape[0]} feature rows but {y.shape[0]} MOS values")
    args: tuple = (x, y)
    job: Callable[..., dict] = evaluate_split
    if test is not None:
        xt = np.asarray(test[0], dtype=np.float64)
        yt = np.asarray(test[1], dtype=np.float64).reshape(-1)
        if xt.shape[0] != yt.shape[0]:
            raise InputError(f"test set: {xt.shape[0]} feature rows but {yt.shape[0]} MOS values")
        if xt.shape[1] != x.shape[1]:
            raise InputError(f"test features have {xt.shape[1]} columns, training features {x.shape[1]}")
        args, job = (x, y, xt, yt), evaluate_cross
    rows = []
    if n_jobs == 1 or n_splits < n_jobs:
        # fewer splits than processes (a cross-dataset run is often one split): each split's grid in parallel
        for i in range(1, n_splits + 1):
            rows.append(job(i, *args, n_jobs=n_jobs, progress=progress))
    else:
        from joblib import Parallel, delayed

        for row in Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(job)(i, *args) for i in range(1, n_splits + 1)
        ):
            rows.append(row)
            if progress:
                progress(STEPS_PER_SPLIT)
    out = {"n_test_videos": int(args[2].shape[0])} if test is not None else {}
    return {
        **out,
        "n_videos": int(x.shape[0]),
        "n_features": int(x.shape[1]),
        "n_splits": n_splits,
        "median": {k: float(np.median([r[k] for r in rows])) for k in METRICS},
        "std": {k: float(np.std([r[k] for r in rows])) for k in METRICS},
        "splits": rows,
    }

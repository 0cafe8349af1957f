"""Evaluation and tuning: fit on training data, score held-out data, no writes.

Ratings come from the database or straight from files (so a user can evaluate before
importing anything).  Three ways to hold data out: a random fraction, K folds, or a
fixed pair of files (MovieLens' u1.base / u1.test).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from recsql import ingest
from recsql.errors import InvalidParameter
from recsql.evaluate import ranking, score, split_folds, split_random
from recsql.factorize import DEFAULT_SOLVER, make_solver
from recsql.matrix import DuplicatePolicy, RatingMatrix


@dataclass(frozen=True)
class FoldResult:
    """Metrics of one train/test split (names as stored in ``models.metrics``)."""

    metrics: dict[str, float]
    fit_seconds: float


@dataclass(frozen=True)
class Evaluation:
    solver: str
    params: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        """Every metric averaged over the folds (one fold: its own)."""
        names = self.folds[0].metrics.keys()
        means = {name: float(np.mean([f.metrics[name] for f in self.folds])) for name in names}
        means["fit_seconds"] = float(np.mean([f.fit_seconds for f in self.folds]))
        return means


def read_matrix(path: str | Path, duplicates: DuplicatePolicy = "max") -> RatingMatrix:
    """A ratings file (any supported format) as a rating matrix."""
    frame = ingest.read_ratings(path)
    return RatingMatrix.from_triples(frame.user_id, frame.movie_id, frame.value, duplicates)


def splits(
    engine: Engine | None = None,
    *,
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    test_fraction: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    source: Any = None,
) -> list[tuple[RatingMatrix, RatingMatrix]]:
    """The (train, test) pairs an evaluation runs on; exactly one way of holding out.

    Ratings come from ``train_file``, else from the database (recsql's table, or the
    application's through ``source``: a Source or the path of its TOML file)."""
    ways = sum(x is not None for x in (test_file, test_fraction, folds))
    if ways != 1:
        raise InvalidParameter("give exactly one of --test-file, --test-fraction or --folds")
    if train_file is not None:
        ratings = read_matrix(train_file, duplicates)
    elif engine is not None:
        from recsql.pipeline import read_ratings
        from recsql.source import Source

        if source is not None and not isinstance(source, Source):
            source = Source.from_toml(source)
        ratings = read_ratings(engine, duplicates, source)
    else:
        raise InvalidParameter("give --train FILE or a database with ratings")
    if test_file is not None:
        return [(ratings, read_matrix(test_file, duplicates))]
    if test_fraction is not None:
        return [split_random(ratings, test_fraction, seed)]
    return split_folds(ratings, folds, seed)


def evaluate_on(
    pairs: Sequence[tuple[RatingMatrix, RatingMatrix]],
    solver: str = DEFAULT_SOLVER,
    **solver_params: Any,
) -> Evaluation:
    """Fit ``solver`` on each training part and score its test part."""
    model = make_solver(solver, **solver_params)
    results = []
    for train, test in pairs:
        started = time.perf_counter()
        factors = model.fit(train)
        fit_seconds = time.perf_counter() - started
        results.append(FoldResult(metrics(factors, train, test), fit_seconds))
    return Evaluation(solver, model.params(), results)


def metrics(factors, train: RatingMatrix, test: RatingMatrix | None) -> dict[str, float]:
    """Train and test RMSE/MAE, and ranking quality on the test set."""
    fitted = score(factors, train)
    result: dict[str, float] = {"train_rmse": fitted.rmse, "train_mae": fitted.mae, "n_train": fitted.n}
    if test is not None:
        held_out = score(factors, test)
        result.update(
            test_rmse=held_out.rmse, test_mae=held_out.mae,
            n_test=held_out.n, n_test_skipped=held_out.skipped,
        )
        result.update(ranking(factors, train, test))
    return result


def evaluate(
    engine: Engine | None = None,
    *,
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    test_fraction: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    source: Any = None,
    solver: str = DEFAULT_SOLVER,
    **solver_params: Any,
) -> Evaluation:
    """Evaluate a solver on held-out ratings, from the database or from files."""
    make_solver(solver, **solver_params)  # reject bad parameters before reading anything
    pairs = splits(
        engine, train_file=train_file, test_file=test_file, test_fraction=test_fraction,
        folds=folds, seed=seed, duplicates=duplicates, source=source,
    )
    return evaluate_on(pairs, solver, seed=seed, **solver_params)


@dataclass(frozen=True)
class TuneRow:
    features: int
    regularization: float
    evaluation: Evaluation


def tune(
    engine: Engine | None = None,
    *,
    features: Sequence[int],
    regularization: Sequence[float],
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    test_fraction: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    source: Any = None,
    solver: str = DEFAULT_SOLVER,
    progress: Callable[[TuneRow], None] | None = None,
    **solver_params: Any,
) -> list[TuneRow]:
    """Evaluate every (features, regularization) pair on the same splits; best test RMSE first."""
    if not features or not regularization:
        raise InvalidParameter("give at least one features value and one regularization value")
    for k, lam in product(features, regularization):
        make_solver(solver, features=k, regularization=lam, **solver_params)
    pairs = splits(
        engine, train_file=train_file, test_file=test_file, test_fraction=test_fraction,
        folds=folds, seed=seed, duplicates=duplicates, source=source,
    )
    rows = []
    for k, lam in product(features, regularization):
        row = TuneRow(k, lam, evaluate_on(pairs, solver, features=k, regularization=lam, seed=seed, **solver_params))
        rows.append(row)
        if progress:
            progress(row)
    return sorted(rows, key=lambda r: r.evaluation.mean["test_rmse"])


def require_matplotlib() -> None:
    """Fail before a long grid search, not after it, when plotting is impossible."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidParameter("plots need matplotlib: pip install 'recsql[plots]'") from None


def plot_tuning(rows: Sequence[TuneRow], path: str | Path) -> Path:
    """A PNG of test RMSE against regularization, one line per feature count."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in sorted({r.features for r in rows}):
        points = sorted((r.regularization, r.evaluation.mean["test_rmse"]) for r in rows if r.features == k)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{k} features")
    if len({r.regularization for r in rows}) > 2 and min(r.regularization for r in rows) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("regularization")
    ax.set_ylabel("test RMSE")
    ax.set_title(f"recsql tune ({rows[0].evaluation.solver})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)

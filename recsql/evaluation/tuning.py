"""Tuning: the same evaluation over a grid of features x regularization, and its plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsql.data.matrix import DuplicatePolicy
from recsql.data.source import Source
from recsql.errors import InvalidParameter
from recsql.evaluation.evaluate import Evaluation, evaluate_on
from recsql.evaluation.splits import holdout
from recsql.model.solvers import DEFAULT_SOLVER, make_solver


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
    source: Source | str | Path | None = None,
    solver: str = DEFAULT_SOLVER,
    progress: Callable[[TuneRow], None] | None = None,
    **solver_params: Any,
) -> list[TuneRow]:
    """Evaluate every (features, regularization) pair on the same splits; best test RMSE first."""
    if not features or not regularization:
        raise InvalidParameter("give at least one features value and one regularization value")
    for k, lam in product(features, regularization):
        make_solver(solver, features=k, regularization=lam, **solver_params)
    pairs = holdout(
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

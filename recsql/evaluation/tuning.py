"""Tuning: the same evaluation over a grid of features x regularization, and its plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsql.errors import InvalidParameter
from recsql.evaluation.evaluate import Evaluation, evaluate_on, split_given
from recsql.options import FitOptions


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
    options: FitOptions | None = None,
    progress: Callable[[TuneRow], None] | None = None,
    **given: Any,
) -> list[TuneRow]:
    """Evaluate every (features, regularization) pair on the same splits; best test RMSE
    first.  ``given``: the holdout and the other fit options, as :func:`evaluate` takes them."""
    if not features or not regularization:
        raise InvalidParameter("give at least one features value and one regularization value")
    holdout, options = split_given(options, given)
    grid = [replace(options, features=k, regularization=lam) for k, lam in product(features, regularization)]
    for point in grid:
        point.backend_of()  # every point checked before the first is fitted
    pairs = holdout.pairs(engine, options.seed, options.duplicates)
    rows = []
    for point in grid:
        assert point.features is not None and point.regularization is not None
        row = TuneRow(point.features, point.regularization, evaluate_on(pairs, point))
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

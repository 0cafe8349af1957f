"""Evaluation: fit a solver on training ratings, score held-out ones, write nothing.

How ratings are held out is :mod:`recsql.evaluation.splits`; what is measured is
:mod:`recsql.evaluation.metrics` (the same figures ``train`` stores with a run).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from recsql.data.matrix import DuplicatePolicy
from recsql.data.source import Source
from recsql.engines import EngineName, engine_solver, fit_models
from recsql.evaluation.metrics import accuracy_metrics, list_metrics
from recsql.evaluation.splits import Split, holdout
from recsql.model.outputs import ListMetric, check_list_params, recommendation_lists, similar_lists
from recsql.model.ranking import DEFAULT_ITEM_REGULARIZATION
from recsql.model.solvers import DEFAULT_SOLVER


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


def evaluate_on(
    pairs: Sequence[Split],
    solver: str = DEFAULT_SOLVER,
    *,
    similar_k: int = 20,
    metric: ListMetric = "items",
    item_regularization: float = DEFAULT_ITEM_REGULARIZATION,
    engine_name: EngineName = "local",
    spark_master: str | None = None,
    spark_conf: Sequence[str] | Mapping[str, str] | None = None,
    **solver_params: Any,
) -> Evaluation:
    """Fit ``solver`` on ``engine_name`` (:mod:`recsql.engines`) on each training part
    and score its test part: ratings (RMSE, MAE), the top-10 recommendations (precision, recall, NDCG, coverage) and the
    ``similar_k`` similar movies (the "because you rated" NDCG@10), both lists built as
    ``train`` builds them for ``metric``."""
    check_list_params(similar_k, metric)
    model = engine_solver(engine_name, solver, spark_master=spark_master, spark_conf=spark_conf, **solver_params)
    results = []
    for train, test in pairs:
        started = time.perf_counter()
        factors, items = fit_models(model, train, metric, item_regularization)
        fit_seconds = time.perf_counter() - started  # both models: what a retrain fits
        similar = similar_lists(factors, items, similar_k, metric)
        recommended = recommendation_lists(factors, items, train.csr, 10)
        metrics = {
            **accuracy_metrics(factors, train, test),
            **list_metrics(factors, train, test, similar, recommended.indices, larger_is_similar=metric != "l1"),
        }

        results.append(FoldResult(metrics, fit_seconds))
    return Evaluation(solver, model.params(), results)


def evaluate(
    engine: Engine | None = None,
    *,
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    test_fraction: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    source: Source | str | Path | None = None,
    solver: str = DEFAULT_SOLVER,
    similar_k: int = 20,
    metric: ListMetric = "items",
    item_regularization: float = DEFAULT_ITEM_REGULARIZATION,
    engine_name: EngineName = "local",
    spark_master: str | None = None,
    spark_conf: Sequence[str] | Mapping[str, str] | None = None,
    **solver_params: Any,
) -> Evaluation:
    """Evaluate a solver on held-out ratings, from the database or from files, fitted on
    ``engine_name`` (``local`` or ``spark``, :mod:`recsql.engines`)."""
    # Reject bad parameters before reading anything.
    engine_solver(engine_name, solver, spark_master=spark_master, spark_conf=spark_conf, **solver_params)
    check_list_params(similar_k, metric)
    pairs = holdout(
        engine, train_file=train_file, test_file=test_file, test_fraction=test_fraction,
        folds=folds, seed=seed, duplicates=duplicates, source=source,
    )
    return evaluate_on(pairs, solver, similar_k=similar_k, metric=metric, item_regularization=item_regularization,
                       seed=seed, engine_name=engine_name, spark_master=spark_master, spark_conf=spark_conf,
                       **solver_params)

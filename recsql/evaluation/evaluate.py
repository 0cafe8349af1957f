"""Evaluation: fit on training ratings, score held-out ones, write nothing.

How ratings are held out is :mod:`recsql.evaluation.splits`; the steps of each fold are
a retrain's own (:mod:`recsql.evaluation.run`) on the same backend, so the figures are
the ones ``train`` stores with a run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from sqlalchemy import Engine

from recsql.data.frames import frame_matrix
from recsql.errors import InvalidParameter
from recsql.evaluation.run import Lists, fit, listed, scored
from recsql.evaluation.splits import Holdout, Split, check_fraction, split_random
from recsql.options import FitOptions
from recsql.progress import Phases
from recsql.threads import using_threads

HOLDOUT_OPTIONS = frozenset(f.name for f in fields(Holdout))


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


def evaluate_on(pairs: Sequence[Split], options: FitOptions | None = None, **given: Any) -> Evaluation:
    """Fit each training part on the options' backend and score its test part: ratings
    (RMSE, MAE), the top-10 recommendations (precision, recall, NDCG, coverage) and the
    ``similar_k`` similar movies (the "because you rated" NDCG@10), both lists built as
    ``train`` builds them.  ``given``: options by name, over ``options``."""
    options = FitOptions.given(options, given)
    backend = options.backend_of()
    lists = Lists(options.similar_k, options.metric, options.item_regularization)
    results = []
    with using_threads(options.threads), backend.session(None) as compute:
        for train, test in pairs:
            phase = Phases()
            started = time.perf_counter()
            fitted = fit(compute, train, test, lists, phase, backend.steps())
            fit_seconds = time.perf_counter() - started  # both models: what a retrain fits
            results.append(FoldResult(scored(fitted, lists, listed(compute, fitted, lists, phase), phase), fit_seconds))
            compute.release(train)
    return Evaluation(backend.solver.name, backend.params(), results)


def evaluate(engine: Engine | None = None, options: FitOptions | None = None, **given: Any) -> Evaluation:
    """Evaluate a fit on held-out ratings, from the database, from files or from
    DataFrames.  ``given`` names the :class:`~recsql.evaluation.splits.Holdout`
    (``train_file``, ``test_file``, ``test_fraction``, ``folds``, ``source``), or a
    ``train`` DataFrame with a ``test`` one or a ``test_fraction`` (``columns`` mapped
    as for :func:`recsql.fit`), and any :class:`~recsql.options.FitOptions` over
    ``options``."""
    if "train" in given:
        return _evaluate_frames(options, dict(given))
    holdout, options = split_given(options, given)
    options.backend_of()  # bad options are refused before anything is read
    return evaluate_on(holdout.pairs(engine, options.seed, options.duplicates), options)


def split_given(options: FitOptions | None, given: Mapping[str, Any]) -> tuple[Holdout, FitOptions]:
    """The holdout and the fit options named in ``given``."""
    holdout = Holdout(**{k: v for k, v in given.items() if k in HOLDOUT_OPTIONS})
    holdout.check()
    return holdout, FitOptions.given(options, {k: v for k, v in given.items() if k not in HOLDOUT_OPTIONS})


def _evaluate_frames(options: FitOptions | None, given: dict[str, Any]) -> Evaluation:
    """``evaluate(train=frame, test=frame | test_fraction=f)``: in memory, no files."""
    train, test, fraction = given.pop("train"), given.pop("test", None), given.pop("test_fraction", None)
    columns = given.pop("columns", None)
    files = sorted(set(given) & HOLDOUT_OPTIONS)
    if files or (test is None) == (fraction is None):
        raise InvalidParameter(
            "with train (a DataFrame) give either test (a DataFrame) or test_fraction"
            + (f", not {', '.join(files)}" if files else "")
        )
    options = FitOptions.given(options, given)
    options.backend_of()  # bad options are refused before anything is fitted
    matrix = frame_matrix(train, columns, options.duplicates)
    if fraction is not None:
        check_fraction(fraction)
        return evaluate_on([split_random(matrix, fraction, options.seed)], options)
    return evaluate_on([(matrix, frame_matrix(test, columns, options.duplicates))], options)

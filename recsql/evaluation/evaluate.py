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

from recsql.algorithms.factors import Factors
from recsql.data.frames import read_frame
from recsql.errors import InvalidParameter
from recsql.evaluation.baselines import baseline_lists, check_baselines, check_fits
from recsql.evaluation.metrics import list_metrics
from recsql.evaluation.run import Fitted, Lists, fit, listed, scored
from recsql.evaluation.splits import Holdout, Split, check_fraction, split_random, split_timed
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
    """Each fold's metrics of the model and, on the same folds, of each baseline
    (:mod:`recsql.evaluation.baselines`: list metrics only, they predict no ratings)."""

    solver: str
    params: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)
    baselines: dict[str, list[FoldResult]] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        """Every metric averaged over the folds (one fold: its own)."""
        return _mean(self.folds)

    def baseline_mean(self, name: str) -> dict[str, float]:
        """A baseline's metrics averaged over the folds."""
        return _mean(self.baselines[name])


def _mean(folds: list[FoldResult]) -> dict[str, float]:
    names = folds[0].metrics.keys()
    means = {name: float(np.mean([f.metrics[name] for f in folds])) for name in names}
    means["fit_seconds"] = float(np.mean([f.fit_seconds for f in folds]))
    return means


def evaluate_on(
    pairs: Sequence[Split], options: FitOptions | None = None, *, baselines: Sequence[str] = (), **given: Any
) -> Evaluation:
    """Fit each training part on the options' backend and score its test part: ratings
    (RMSE, MAE), the top-10 recommendations (precision, recall, NDCG, coverage) and the
    ``similar_k`` similar movies (the "because you rated" NDCG@10), both lists built as
    ``train`` builds them; then each of ``baselines`` ("popular", "ease") on the same
    parts, scored by the same list metrics.  ``given``: options by name, over ``options``."""
    options = FitOptions.given(options, given)
    backend = options.backend_of()
    names = check_baselines(list(baselines))
    lists = Lists(options.similar_k, options.metric, options.item_regularization)
    results: list[FoldResult] = []
    others: dict[str, list[FoldResult]] = {name: [] for name in names}
    with using_threads(options.threads), backend.session(None) as compute:
        for train, test in pairs:
            for name in names:
                check_fits(name, train)
            phase = Phases()
            started = time.perf_counter()
            fitted = fit(compute, train, test, lists, phase, backend.steps())
            fit_seconds = time.perf_counter() - started  # both models: what a retrain fits
            results.append(FoldResult(scored(fitted, lists, listed(compute, fitted, lists, phase), phase), fit_seconds))
            for name in names:
                others[name].append(_baseline(name, fitted, lists))
            compute.release(train)
    return Evaluation(backend.solver.name, backend.params(), results, others)


def _baseline(name: str, fitted: Fitted, lists: Lists) -> FoldResult:
    """A baseline fitted to a fold's training part and scored on its test part as the
    model's lists are (diversity measured in the model's feature space, one yardstick)."""
    train, factors = fitted.matrix, fitted.factors
    started = time.perf_counter()
    made = baseline_lists(name, train, lists.recommend_n, lists.similar_k, seed=0)
    seconds = time.perf_counter() - started
    if not (np.array_equal(factors.user_ids, train.user_ids) and np.array_equal(factors.movie_ids, train.movie_ids)):
        # a backend whose factors leave some of the ratings' users or movies out: no shared feature space
        factors = Factors(train.user_ids, train.movie_ids, np.zeros((train.n_users, 0)), np.zeros((train.n_movies, 0)))
    metrics = list_metrics(factors, train, fitted.test, made.similar, made.recommended)
    return FoldResult({**metrics, **made.facts}, seconds)


def evaluate(engine: Engine | None = None, options: FitOptions | None = None, **given: Any) -> Evaluation:
    """Evaluate a fit on held-out ratings, from the database, from files or from
    DataFrames.  ``given`` names the :class:`~recsql.evaluation.splits.Holdout`
    (``train_file``, ``test_file``, ``test_fraction``, ``folds``, ``source``, ``split``
    ("random", "time" or "leave-last-n") and ``last_n``), or a ``train`` DataFrame with a
    ``test`` one, a ``test_fraction`` or a time ``split`` (``columns`` mapped as for
    :func:`recsql.fit`, a time column among them); ``baselines`` ("popular", "ease")
    to score beside the model on the same split; and any
    :class:`~recsql.options.FitOptions` over ``options``."""
    given = dict(given)
    baselines = check_baselines(list(given.pop("baselines", ())))
    if "train" in given:
        return _evaluate_frames(options, given, baselines)
    holdout, options = split_given(options, given)
    options.backend_of()  # bad options are refused before anything is read
    return evaluate_on(holdout.pairs(engine, options.seed, options.duplicates), options, baselines=baselines)


def split_given(options: FitOptions | None, given: Mapping[str, Any]) -> tuple[Holdout, FitOptions]:
    """The holdout and the fit options named in ``given``."""
    holdout = Holdout(**{k: v for k, v in given.items() if k in HOLDOUT_OPTIONS})
    holdout.check()
    return holdout, FitOptions.given(options, {k: v for k, v in given.items() if k not in HOLDOUT_OPTIONS})


def _evaluate_frames(options: FitOptions | None, given: dict[str, Any], baselines: Sequence[str]) -> Evaluation:
    """``evaluate(train=frame, test=frame | test_fraction=f | split=...)``: in memory, no files."""
    train, test, fraction = given.pop("train"), given.pop("test", None), given.pop("test_fraction", None)
    columns = given.pop("columns", None)
    split, last_n = given.pop("split", "random"), given.pop("last_n", None)
    files = sorted(set(given) & HOLDOUT_OPTIONS)
    if split == "random" and (files or (test is None) == (fraction is None)):
        raise InvalidParameter(
            "with train (a DataFrame) give either test (a DataFrame) or test_fraction"
            + (f", not {', '.join(files)}" if files else "")
        )
    # the checks (and messages) of the same split of a file
    Holdout(test_fraction=fraction, split=split, last_n=last_n, test_file=None if test is None else "test").check()
    options = FitOptions.given(options, given)
    options.backend_of()  # bad options are refused before anything is fitted
    given_train = read_frame(train, columns, options.duplicates)
    if split != "random":
        pairs = [split_timed(given_train.matrix, given_train.times, split, fraction, last_n, options.seed)]
    elif fraction is not None:
        check_fraction(fraction)
        pairs = [split_random(given_train.matrix, fraction, options.seed)]
    else:  # text ids of the test frame mapped by the training frame's keys
        pairs = [(given_train.matrix, read_frame(test, columns, options.duplicates, given_train.keys).matrix)]
    return evaluate_on(pairs, options, baselines=baselines)

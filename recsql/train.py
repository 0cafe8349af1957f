"""Retrain: read -> split -> fit -> lists -> metrics -> write -> activate, once, on any
backend.

The only module that strings the database edges (the ratings read through a
:class:`~recsql.backends.Backend`, :mod:`recsql.store` out) and the pure middle
(:mod:`recsql.evaluation.run`) together.  It never asks which backend it has: the
backend's hooks read, fit and list.  Any failure after the model row exists marks it
failed and re-raises; the previously active model stays active.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsql import store
from recsql.algorithms.outputs import ModelOutputs
from recsql.backends import Backend, Compute, RatingsAt
from recsql.data.imports import refresh_titles
from recsql.data.matrix import RatingMatrix
from recsql.data.ratings import as_source, ratings_from_file
from recsql.data.source import Source
from recsql.db.catalogue import stored_scale
from recsql.db.lock import WriterLock, writer_lock
from recsql.errors import InvalidParameter
from recsql.evaluation.run import Fitted, Lists, Scale, fit, listed, run_metrics, stored_outputs
from recsql.evaluation.splits import check_fraction, split_random
from recsql.options import FitOptions
from recsql.progress import Phases
from recsql.threads import using_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions(FitOptions):
    """A retrain's options: the fit's (:class:`~recsql.options.FitOptions`), then how it
    is scored and what is kept.  ``test_fraction`` holds out that share of the ratings at
    random (reproducible by ``seed``) to score the fit on the rest; then, unless
    ``refit`` is False, the model is fitted again on every rating and that one is stored
    (its stored metrics are the scored fit's: ``metrics["refit"]`` says so).
    ``test_file`` scores a fixed file of ratings instead.  ``recommend_n``
    recommendations are stored per user; after activation the output rows of all but the
    ``keep`` newest complete models (and of failed ones) are deleted.  ``activate=False``
    keeps the new version complete but not active (retired, never activated): a model B
    for a traffic split (:func:`recsql.split_traffic`), or one to look at before
    ``recsql models activate``."""

    test_fraction: float | None = None
    test_file: str | Path | None = None
    recommend_n: int = store.DEFAULT_RECOMMEND_N
    refit: bool = True
    keep: int = store.DEFAULT_KEEP
    activate: bool = True

    @property
    def refits(self) -> bool:
        """Whether the stored model is a second fit, on every rating."""
        return self.refit and self.test_fraction is not None and self.test_file is None

    def lists(self) -> Lists:
        return Lists(self.similar_k, self.metric, self.item_regularization, self.recommend_n)


@dataclass
class TrainResult:
    """What a retrain produced (the same figures are stored in its ``models`` row)."""

    model_id: int
    algorithm: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    n_users: int = 0
    n_movies: int = 0
    n_ratings: int = 0
    plan: str = ""  # what the solver chose to do on this data (``Solver.plan``)
    refitted: bool = False  # stored model refitted on every rating after scoring a held-out share
    activated: bool = True  # False: kept aside (``activate=False``)
    ended_split: store.Split | None = None  # the traffic split its activation ended


@dataclass(frozen=True)
class Stored:
    """Where a run's outputs go: its model version, written while holding ``lock``."""

    engine: Engine
    model_id: int
    lock: WriterLock
    params: dict[str, Any]
    activate: bool = True
    ended: list[store.Split] = field(default_factory=list)  # the split the activation ended, if any


def train(
    engine: Engine,
    options: TrainOptions | None = None,
    *,
    source: Source | str | Path | None = None,
    wait: float = 0.0,
    show_progress: bool = False,
    **given: Any,
) -> TrainResult:
    """Train a new model version from the stored ratings and make it the active one.

    ``options`` (:class:`TrainOptions`; any of its fields may be ``given`` by name
    instead, e.g. ``train(engine, features=15, test_fraction=0.2)``) say what is fitted,
    where, and how it is scored.  Solver parameters left as None take the solver's
    defaults for the data's size; what was chosen is logged, returned as
    ``TrainResult.plan`` and stored in the run's parameters.
    ``source`` (a :class:`~recsql.data.source.Source` or the path of its TOML file)
    trains from the application's own tables instead of recsql's ``ratings``; item
    titles are refreshed from its movies table, if it maps one.
    Only one writer runs at a time: with another retrain (or activation, or prune)
    running, this one waits up to ``wait`` seconds, then raises :class:`~recsql.errors.Busy`.
    ``show_progress`` draws a progress bar per phase on stderr; the seconds each phase
    took are returned and stored in ``models.timings`` either way.
    """
    options = TrainOptions.given(options, given)
    with using_threads(options.threads):
        backend = options.backend_of()
        # Every input is checked before the model row exists: a typo must not leave a failed run.
        test = ratings_from_file(options.test_file, options.duplicates) if options.test_file is not None else None
        if options.test_fraction is not None:
            check_fraction(options.test_fraction)
        if options.recommend_n < 0:
            raise InvalidParameter(f"recommend_n must not be negative, not {options.recommend_n}")
        if options.keep < 1:
            raise InvalidParameter(f"keep must be at least 1 (the model being trained), not {options.keep}")
        return _train(engine, backend, options, as_source(source), test, wait, Phases(show=show_progress))


def _train(
    engine: Engine,
    backend: Backend,
    options: TrainOptions,
    source: Source | None,
    test: RatingMatrix | None,
    wait: float,
    phase: Phases,
) -> TrainResult:
    # One writer at a time; runs whose process died before finishing are cleaned up first.
    with writer_lock(engine, wait, holder=lambda: store.running_description(engine)) as lock:
        store.reclaim_dead(engine, lock)
        ratings = RatingsAt(engine, options.duplicates, source, lock)
        with phase("read"):
            plan = backend.plan(ratings)
        log.info("fit plan: %s", plan)
        params = {**backend.params(), "plan": plan, **run_settings(options, source)}
        with _new_version(engine, lock, backend.solver.name, params, options.keep, phase, options.activate) as stored:
            with backend.session(ratings) as compute:
                matrix, metrics = _run(stored, compute, backend, ratings, test, options, phase)
    return TrainResult(
        model_id=stored.model_id,
        algorithm=backend.solver.name,
        params=params,
        metrics=metrics,
        timings=phase.timings,
        n_users=matrix.n_users,
        n_movies=matrix.n_movies,
        n_ratings=matrix.nnz,
        plan=plan,
        refitted=options.refits,
        activated=options.activate,
        ended_split=stored.ended[0] if stored.ended else None,
    )


@contextmanager
def _new_version(
    engine: Engine,
    lock: WriterLock,
    algorithm: str,
    params: dict[str, Any],
    keep: int,
    phase: Phases,
    activate: bool = True,
) -> Iterator[Stored]:
    """A model version's row for the body to write (and activate) under ``lock``: marked
    failed if the body raises, so the previously active model stays active; then the
    versions beyond ``keep`` pruned (if it was activated) and the phases' seconds stored."""
    model_id = store.start(engine, algorithm, params, lock)
    stored = Stored(engine, model_id, lock, params, activate)
    try:
        yield stored
    except BaseException as exc:
        store.fail(engine, model_id, exc)  # never masks exc: see store.fail
        raise
    done = "active" if activate else "kept aside, not active"
    log.info("model %d is %s (%s)", model_id, done, Phases.summary_of(phase.timings))
    # The new model is active whatever happens now; an interrupted prune is finished by the next one.
    try:
        if activate:
            with phase("prune"):
                store.prune(engine, lock, keep)
    finally:
        store.record_timings(engine, model_id, phase.timings)


def save_model(
    engine: Engine,
    outputs: ModelOutputs,
    algorithm: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    timings: dict[str, float],
    *,
    activate: bool = True,
    wait: float = 0.0,
    keep: int = store.DEFAULT_KEEP,
) -> int:
    """Store a model fitted elsewhere (in memory: :meth:`recsql.Model.save`) as a new
    version, as a retrain stores its own: the same rows, the same record, the same
    atomic switch (unless ``activate`` is False: then it waits, complete but not active,
    for ``recsql models activate``; see :func:`recsql.store.shelve`).  Returns its model_id."""
    if keep < 1:
        raise InvalidParameter(f"keep must be at least 1 (the model being saved), not {keep}")
    phase = Phases()
    phase.timings.update(timings)
    with writer_lock(engine, wait, holder=lambda: store.running_description(engine)) as lock:
        store.reclaim_dead(engine, lock)
        with _new_version(engine, lock, algorithm, dict(params), keep, phase, activate) as stored:
            _write(stored, outputs, metrics, phase)
    return stored.model_id


def run_settings(options: TrainOptions, source: Source | None) -> dict[str, Any]:
    """The run's settings beside the solver's parameters (stored with it)."""
    return {
        "duplicates": options.duplicates,
        "test_fraction": options.test_fraction,
        "test_file": str(options.test_file) if options.test_file is not None else None,
        "similar_k": options.similar_k,
        "metric": options.metric,
        "item_regularization": options.item_regularization,
        "recommend_n": options.recommend_n,
        "source": source.to_params() if source is not None else None,
        "refit": options.refits,
    }


def _run(
    stored: Stored,
    compute: Compute,
    backend: Backend,
    ratings: RatingsAt,
    test: RatingMatrix | None,
    options: TrainOptions,
    phase: Phases,
) -> tuple[RatingMatrix, dict[str, Any]]:
    """Read, split, fit, then store; with ``options.refits``, score the fit on its
    held-out share, let it go, and store a second fit on every rating, whose metrics are
    the scored fit's, marked ``refit``.  Returns the stored model's ratings and metrics."""
    lists = options.lists()
    with phase("read"):
        everything = compute.read(ratings)
        ratings.forget()  # from here the run decides how long the ratings live
        scale = _scale(stored.engine, ratings.source, stored.lock)
    log.info(
        "model %d: training %s on %d ratings of %d users and %d movies",
        stored.model_id,
        backend.solver.name,
        everything.nnz,
        everything.n_users,
        everything.n_movies,
    )
    matrix = everything
    if options.test_fraction is not None and test is None:
        matrix, test = split_random(everything, options.test_fraction, options.seed)
        if not options.refits:
            compute.release(everything)
            del everything
    fitted = fit(compute, matrix, test, lists, phase, backend.steps(), scale=scale)
    if not options.refits:
        return fitted.matrix, _store(stored, compute, fitted, lists, phase)
    metrics = {**_scored(compute, fitted, lists, phase), "refit": True, "scored_fit_ratings": matrix.nnz}
    if fitted.items is not None and fitted.items.settings is not None:  # the refit keeps what the scored fit chose
        lists = replace(lists, item_regularization=fitted.items.settings)
    compute.release(matrix)
    del fitted, matrix, test  # the scored fit's memory goes before the next fit's comes
    refitted = fit(compute, everything, None, lists, phase, backend.steps(), scale=scale, prefix="refit ")
    return refitted.matrix, _store(stored, compute, refitted, lists, phase, metrics)


def _scale(engine: Engine, source: Source | None, lock: WriterLock) -> Scale:
    """The rating scale predictions are clipped to: the imported files' (None: the
    data's, for a source, whose item titles are refreshed here)."""
    if source is not None:
        refresh_titles(engine, source, lock)
        return None
    with engine.connect() as conn:
        return stored_scale(conn)


def _scored(compute: Compute, fitted: Fitted, lists: Lists, phase: Phases, prefix: str = "") -> dict[str, Any]:
    """A fit's metrics on its held-out ratings, through the lists it would store."""
    return run_metrics(fitted, lists, listed(compute, fitted, lists, phase, prefix), phase)


def _store(
    stored: Stored,
    compute: Compute,
    fitted: Fitted,
    lists: Lists,
    phase: Phases,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lists, the metrics (or those given: a scored fit's, for a model refitted on
    every rating), the write and the switch to the new model.  Returns the metrics stored."""
    out = listed(compute, fitted, lists, phase, prefix="refit " if metrics is not None else "")
    if metrics is None:
        metrics = run_metrics(fitted, lists, out, phase)
    outputs = stored_outputs(fitted, out)
    if fitted.items is not None:  # what the item model chose completes the run's params (and its result's)
        stored.params.update(fitted.items.facts())
    _write(stored, outputs, metrics, phase)
    return metrics


def _write(stored: Stored, outputs: ModelOutputs, metrics: dict[str, Any], phase: Phases) -> None:
    """The version's rows written and marked ready, then (``stored.activate``) the switch to it."""
    with phase("write", total=len(store.OUTPUT_TABLES)) as step:
        store.save_outputs(
            stored.engine,
            stored.model_id,
            outputs,
            metrics=metrics,
            params=stored.params,
            timings=phase.timings,
            lock=stored.lock,
            step=step,
        )
    with phase("activate"):
        if stored.activate:
            ended = store.switch_active(stored.engine, stored.model_id, stored.lock)
            stored.ended.extend([ended] if ended else [])
        else:
            store.shelve(stored.engine, stored.model_id, stored.lock)

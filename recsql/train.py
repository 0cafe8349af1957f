"""Retrain: read -> fit -> outputs -> store -> activate, in that order, nothing else.

The only module that strings the database edges (:mod:`recsql.data.ratings` in,
:mod:`recsql.store` out) and the pure middle (:mod:`recsql.model`,
:mod:`recsql.evaluation.metrics`) together.  Any failure after the model row exists
marks it failed and re-raises; the previously active model stays active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsql import store
from recsql.data.load import refresh_titles, stored_scale
from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import as_source, ratings_from_database, ratings_from_file
from recsql.data.source import Source
from recsql.db.lock import WriterLock, writer_lock
from recsql.engines import EngineName, engine_solver
from recsql.errors import InvalidParameter
from recsql.evaluation.metrics import accuracy_metrics, list_metrics
from recsql.evaluation.splits import split_random
from recsql.model.factors import Factors
from recsql.model.outputs import (
    ListMetric,
    ModelOutputs,
    Recommended,
    check_list_params,
    item_model,
    popularity,
    recommendation_lists,
    similar_lists,
)
from recsql.model.ranking import DEFAULT_ITEM_REGULARIZATION, ItemItem
from recsql.model.solvers import DEFAULT_SOLVER, Solver
from recsql.model.topk import TopK, block_count
from recsql.progress import Phases, Step
from recsql.spark.als import SparkALS
from recsql.spark.lists import lists_in_spark, spark_recommended, spark_similar
from recsql.spark.read import frame_of_matrix, jdbc_ratings, matrix_of_frame, reads_over_jdbc
from recsql.spark.session import spark_session
from recsql.threads import using_threads

log = logging.getLogger(__name__)

Scale = tuple[float, float] | None  # the rating scale predictions are clipped to; None: the data's


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


def train(
    engine: Engine,
    *,
    solver: str = DEFAULT_SOLVER,
    features: int | None = None,
    regularization: float | None = None,
    max_iterations: int | None = None,
    samples: int | None = None,
    implicit: bool | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    test_fraction: float | None = None,
    test_file: str | Path | None = None,
    similar_k: int = 20,
    metric: ListMetric = "items",
    item_regularization: float = DEFAULT_ITEM_REGULARIZATION,
    recommend_n: int = store.DEFAULT_RECOMMEND_N,
    source: Source | str | Path | None = None,
    refit: bool = True,
    keep: int = store.DEFAULT_KEEP,
    wait: float = 0.0,
    threads: int | None = None,
    engine_name: EngineName = "local",
    spark_master: str | None = None,
    spark_conf: Sequence[str] | Mapping[str, str] | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train a new model version from the stored ratings and make it the active one.

    Solver parameters left as None take the solver's defaults (``als``: 6 features,
    Bayesian averaging over Gibbs samples with implicit feedback, as many draws as the
    data's size affords, plain ALS at tens of millions of ratings; ``cg``: the
    tutorial's 15 features and regularization 0.1).  ``time_budget`` (``als``) bounds
    the fit's seconds instead of the size rule.  What was chosen is logged, returned as
    ``TrainResult.plan`` and stored in the run's parameters.

    ``test_fraction`` holds out that share of the ratings at random (reproducible by
    ``seed``) to score the fit on the rest; then, unless ``refit`` is False, the model is
    fitted again on every rating and that one is stored and served (its stored metrics
    are the scored fit's: ``metrics["refit"]`` says so).  ``test_file`` scores a fixed
    file of ratings instead (the stored model is fitted to all the stored ratings).
    ``source`` (a :class:`~recsql.data.source.Source` or the path of its TOML file)
    trains from the application's own tables instead of recsql's ``ratings``; item
    titles are refreshed from its movies table, if it maps one.
    ``metric`` says what orders the stored lists (:mod:`recsql.model.outputs`): ``items``
    (default) the item-item choice model blended with the rating model, with
    ``item_regularization`` as its lambda; ``cosine`` or ``l1`` the rating model alone.
    Only one writer runs at a time: with another retrain (or activation, or prune)
    running, this one waits up to ``wait`` seconds, then raises
    :class:`~recsql.errors.Busy`.  After activation, the output rows of all but the ``keep`` newest complete models
    (and of failed ones) are deleted (:func:`recsql.store.prune_models`).
    ``threads`` caps the threads and database connections the retrain uses (default:
    ``$RECSQL_THREADS``, else the cores the process may use; :mod:`recsql.threads`).
    ``engine_name="spark"`` reads and fits in Apache Spark (:mod:`recsql.spark`) on
    ``spark_master`` (default ``local[N]``, N the threads above) with ``spark_conf``
    (``key=value`` pairs); the lists, metrics and writes are the same as the local
    engine's.
    ``show_progress`` draws a progress bar per phase on stderr; the seconds each phase
    took are returned and stored in ``models.timings`` either way.
    """
    with using_threads(threads):
        fitter = engine_solver(
            engine_name, solver, spark_master=spark_master, spark_conf=spark_conf,
            features=features, regularization=regularization, max_iterations=max_iterations,
            samples=samples, implicit=implicit, seed=seed, time_budget=time_budget,
        )
        return _train(
            engine, fitter, seed=seed, duplicates=duplicates, test_fraction=test_fraction,
            test_file=test_file, similar_k=similar_k,
            metric=metric, item_regularization=item_regularization, recommend_n=recommend_n,
            source=source, refit=refit, keep=keep, wait=wait, show_progress=show_progress,
        )


def _train(
    engine: Engine,
    model: Solver,
    *,
    seed: int,
    duplicates: DuplicatePolicy,
    test_fraction: float | None,
    test_file: str | Path | None,
    similar_k: int,
    metric: ListMetric,
    item_regularization: float,
    recommend_n: int,
    source: Source | str | Path | None,
    refit: bool,
    keep: int,
    wait: float,
    show_progress: bool,
) -> TrainResult:
    phase = Phases(show=show_progress)
    timings = phase.timings
    # Check every input before the model row exists: a typo must not leave a failed run.
    test: RatingMatrix | None = None
    if test_file is not None:
        test = ratings_from_file(test_file, duplicates)
    check_list_params(similar_k, metric)
    if recommend_n < 0:
        raise InvalidParameter(f"recommend_n must not be negative, not {recommend_n}")
    if keep < 1:
        raise InvalidParameter(f"keep must be at least 1 (the model being trained), not {keep}")
    source = as_source(source)
    # One writer at a time; runs whose process died before finishing are cleaned up first.
    with writer_lock(engine, wait, holder=lambda: store.running_description(engine)) as lock:
        store.reclaim_dead(engine, lock)
        refits = refit and test_fraction is not None and test is None
        settings = {"duplicates": duplicates, "test_fraction": test_fraction,
                    "test_file": str(test_file) if test_file is not None else None, "similar_k": similar_k,
                    "metric": metric, "item_regularization": item_regularization, "recommend_n": recommend_n,
                    "source": source.to_params() if source is not None else None, "refit": refits}
        if isinstance(model, SparkALS):
            # Spark reads after the run's row exists: a Spark that cannot start (a master
            # that does not answer) or dies mid-fit is a failed run on record.
            plan = model.spark_plan(jdbc=reads_over_jdbc(engine, duplicates, source))
            what = f"Spark ({model.settings.master})"
        else:
            with phase("read"):
                matrix = everything = ratings_from_database(engine, duplicates, source, lock)
                scale = _scale(engine, source, lock)
            if test_fraction is not None and test is None:
                matrix, test = split_random(matrix, test_fraction, seed)
            plan = model.plan(matrix.n_users, matrix.n_movies, matrix.nnz)
            what = f"{matrix.nnz} ratings of {matrix.n_users} users and {matrix.n_movies} movies"
        log.info("fit plan: %s", plan)
        params = {**model.params(), "plan": plan, **settings}
        model_id = store.start(engine, model.name, params, lock)
        log.info("model %d: training %s on %s", model_id, model.name, what)
        lists = Lists(similar_k, metric, recommend_n)
        stored = Stored(engine, model_id, lock)
        try:
            if isinstance(model, SparkALS):
                matrix, metrics = _train_on_spark(
                    stored, model, phase, lists, duplicates=duplicates, source=source,
                    test_fraction=test_fraction, test=test, seed=seed, refit=refits)
            else:
                def refit_all(step: Step) -> Fitted:
                    return Fitted(everything, None, model.fit(everything, step),
                                  item_model(everything, metric, item_regularization), scale)

                # The first fit is handed over unnamed, so a refit frees it before fitting again.
                matrix, metrics = _store_fitted(
                    stored, _fit_locally(model, matrix, test, scale, phase, metric, item_regularization),
                    phase, lists, refit_all if refits else None, model.steps())
        except BaseException as exc:
            store.fail(engine, model_id, exc)  # never masks exc: see store.fail
            raise
        log.info("model %d is active (%s)", model_id, Phases.summary_of(timings))
        # The new model is active whatever happens now; an interrupted prune is finished by
        # the next one.
        try:
            with phase("prune"):
                store.prune(engine, lock, keep)
        finally:
            store.record_timings(engine, model_id, timings)
        return TrainResult(
            model_id=model_id,
            algorithm=model.name,
            params=params,
            metrics=metrics,
            timings=timings,
            n_users=matrix.n_users,
            n_movies=matrix.n_movies,
            n_ratings=matrix.nnz,
            plan=plan,
            refitted=refits,
        )


def _scale(engine: Engine, source: Source | None, lock: WriterLock) -> Scale:
    """The rating scale predictions are clipped to: the imported files' (None: the
    data's, for a source, whose item titles are refreshed here)."""
    if source is not None:
        refresh_titles(engine, source, lock)
        return None
    with engine.connect() as conn:
        return stored_scale(conn)


@dataclass(frozen=True)
class Lists:
    """What the stored lists hold: ``similar_k`` similar movies ordered by ``metric``,
    ``recommend_n`` recommendations per user."""

    similar_k: int
    metric: ListMetric
    recommend_n: int


@dataclass(frozen=True)
class Stored:
    """Where a run's outputs go: its model version, written while holding ``lock``."""

    engine: Engine
    model_id: int
    lock: WriterLock


@dataclass(frozen=True)
class Fitted:
    """A fit and what it was fitted to, ready for :func:`_store_outputs`.  ``spark``: the
    session and the training ratings in it, when the lists are computed in Spark."""

    matrix: RatingMatrix
    test: RatingMatrix | None
    factors: Factors
    items: ItemItem | None
    scale: Scale
    spark: tuple[Any, Any] | None = None


def _train_on_spark(
    stored: Stored, model: SparkALS, phase: Phases, lists: Lists, *, duplicates: DuplicatePolicy,
    source: Source | None, test_fraction: float | None, test: RatingMatrix | None, seed: int, refit: bool,
) -> tuple[RatingMatrix, dict[str, Any]]:
    """Read and fit in Spark, then store as the local engine does, in the same session
    (the lists, if computed in Spark, need it).  The ratings come to the driver too, for
    the metrics (and the lists, when they are computed there).  With ``refit``, the
    held-out share scores a first fit and a second one on every rating is stored."""
    engine = stored.engine
    jdbc = reads_over_jdbc(engine, duplicates, source)
    with ExitStack() as stack:
        with phase("read"):
            spark = stack.enter_context(spark_session(model.settings, jdbc=jdbc))
            frame = None  # the ratings in Spark, when Spark read them itself
            if jdbc:
                frame = jdbc_ratings(spark, engine, model.settings, duplicates, source).cache()
                matrix = matrix_of_frame(frame, duplicates)
            else:
                matrix = ratings_from_database(engine, duplicates, source, stored.lock)
            scale = _scale(engine, source, stored.lock)
            everything, whole = matrix, frame
            if test_fraction is not None and test is None:
                # The local engine's split, so both engines are scored on the same ratings.
                matrix, test = split_random(matrix, test_fraction, seed)
                if frame is not None and not refit:  # Spark fits the training part only
                    frame.unpersist()
                frame = None
            if frame is None:
                frame = frame_of_matrix(spark, matrix).cache()
        with phase("fit", total=model.steps()) as step:
            factors = model.fit_frame(frame, matrix, step)
        with phase("items"):
            items = model.choice_model(frame, matrix) if lists.metric == "items" else None
        in_spark = lists_in_spark(model.lists, local_master=model.settings.is_local,
                                  n_users=everything.n_users, n_movies=everything.n_movies)
        training = frame

        def refit_all(step: Step) -> Fitted:
            training.unpersist()
            full = whole if whole is not None else frame_of_matrix(spark, everything).cache()
            factors = model.fit_frame(full, everything, step)
            items = model.choice_model(full, everything) if lists.metric == "items" else None
            return Fitted(everything, None, factors, items, scale, (spark, full) if in_spark else None)

        fitted = Fitted(matrix, test, factors, items, scale, (spark, frame) if in_spark else None)
        return _store_fitted(stored, fitted, phase, lists, refit_all if refit else None, model.steps())


def _fit_locally(
    model: Solver, matrix: RatingMatrix, test: RatingMatrix | None, scale: Scale, phase: Phases,
    metric: ListMetric, item_regularization: float,
) -> Fitted:
    with phase("fit", total=model.steps()) as step:
        factors = model.fit(matrix, step)
    with phase("items"):
        items = item_model(matrix, metric, item_regularization)
    return Fitted(matrix, test, factors, items, scale)


def _store_fitted(
    stored: Stored, fitted: Fitted, phase: Phases, lists: Lists, refit: Callable[[Step], Fitted] | None,
    steps: int | None,
) -> tuple[RatingMatrix, dict[str, Any]]:
    """Store a fit, the same for every engine; or, given ``refit``, score the fit on its
    held-out share, let it go, and store the fit ``refit`` makes on every rating (in the
    phase "refit", ``steps`` long), whose metrics are the scored fit's, marked ``refit``.
    Returns the stored model's ratings and metrics."""
    if refit is None:
        return fitted.matrix, _store_outputs(stored, fitted, phase, lists)
    scored = {**_evaluate(fitted, phase, lists), "refit": True, "scored_fit_ratings": fitted.matrix.nnz}
    del fitted  # the caller kept no reference: the scored fit's memory goes before the next fit's comes
    with phase("refit", total=steps) as step:
        refitted = refit(step)
    return refitted.matrix, _store_outputs(stored, refitted, phase, lists, metrics=scored)


def _store_outputs(
    stored: Stored, fitted: Fitted, phase: Phases, lists: Lists, metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything after the fit, the same for every engine: the lists, the metrics (or
    those given: a scored fit's, for a model refitted on every rating), the write and
    the switch to the new model.  Returns the metrics stored."""
    factors = _clipped(fitted)
    similar, recommended = _lists(fitted, factors, phase, lists, prefix="refit " if metrics is not None else "")
    if metrics is None:
        metrics = _metrics(fitted, factors, similar, recommended, phase, lists)
    outputs = ModelOutputs(factors, similar, recommended, popularity(fitted.matrix), n_ratings=fitted.matrix.nnz)
    with phase("write", total=len(store.OUTPUT_TABLES)) as step:
        store.save_outputs(stored.engine, stored.model_id, outputs, metrics=metrics, timings=phase.timings,
                           lock=stored.lock, step=step)
    with phase("activate"):
        store.switch_active(stored.engine, stored.model_id, stored.lock)
    return metrics


def _evaluate(fitted: Fitted, phase: Phases, lists: Lists) -> dict[str, Any]:
    """A fit's metrics on its held-out ratings, through the lists it would store."""
    factors = _clipped(fitted)
    similar, recommended = _lists(fitted, factors, phase, lists)
    return _metrics(fitted, factors, similar, recommended, phase, lists)


def _clipped(fitted: Fitted) -> Factors:
    factors = fitted.factors
    if fitted.scale is not None and factors.clip is not None:
        factors = replace(factors, clip=fitted.scale)  # predictions span the scale, not the data
    return factors


def _lists(
    fitted: Fitted, factors: Factors, phase: Phases, lists: Lists, prefix: str = ""
) -> tuple[TopK, Recommended]:
    """The similar movies and the recommendations to store (on the driver or in Spark)."""
    matrix, items = fitted.matrix, fitted.items
    k, metric, n = lists.similar_k, lists.metric, lists.recommend_n
    with phase(f"{prefix}similarities", total=block_count(matrix.n_movies, matrix.n_movies)) as step:
        if fitted.spark is not None:
            similar = spark_similar(fitted.spark[0], factors, items, k, metric)
        else:
            similar = similar_lists(factors, items, k, metric, step)
    with phase(f"{prefix}recommendations", total=block_count(matrix.n_users, matrix.n_movies)) as step:
        if fitted.spark is not None:
            recommended = spark_recommended(*fitted.spark, factors, items, n)
        else:
            recommended = recommendation_lists(factors, items, matrix.csr, n, step)
    return similar, recommended


def _metrics(
    fitted: Fitted, factors: Factors, similar: TopK, recommended: Recommended, phase: Phases, lists: Lists
) -> dict[str, Any]:
    with phase("evaluate"):
        return {
            **accuracy_metrics(factors, fitted.matrix, fitted.test),
            **list_metrics(factors, fitted.matrix, fitted.test, similar, recommended.indices,
                           larger_is_similar=lists.metric != "l1"),
            **{k: v for k, v in factors.info.items() if isinstance(v, (int, float, bool, list))},
            "stored_features": int(factors.movie_factors.shape[1]),
        }

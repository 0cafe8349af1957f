"""Retrain: read -> fit -> evaluate -> neighbours -> write -> activate.

The only module that strings the database edges (:mod:`recsql.db`, :mod:`recsql.runs`)
and the pure middle (:mod:`recsql.matrix`, :mod:`recsql.factorize`,
:mod:`recsql.neighbors`, :mod:`recsql.evaluate`) together.  Any failure after the run
row exists marks the run failed and re-raises; the previously active model stays active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from recsql import db, runs
from recsql.errors import InvalidParameter, NoRatings
from recsql.evaluate import split_random
from recsql.experiment import metrics as experiment_metrics
from recsql.experiment import read_matrix
from recsql.factorize import DEFAULT_SOLVER, make_solver
from recsql.matrix import DuplicatePolicy, RatingMatrix
from recsql.neighbors import (
    Metric, block_count, check_similarity_params, popular, top_k_similar, top_n_unrated,
)
from recsql.progress import Phases
from recsql.source import Source, read_only


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


RATINGS_SQL = "SELECT user_id, movie_id, value FROM ratings"
# For duplicates='last': the latest rating wins; undated ones count as older, then import order.
RATINGS_IN_ORDER_SQL = (
    RATINGS_SQL + " ORDER BY CASE WHEN rated_at IS NULL THEN 0 ELSE 1 END, rated_at, id"
)


def read_ratings(
    engine: Engine, duplicates: DuplicatePolicy = "max", source: Source | None = None
) -> RatingMatrix:
    """All ratings (recsql's table, or the application's via ``source``) as a sparse
    matrix, duplicates resolved by ``duplicates``."""
    with engine.connect() as conn:
        if source is not None:
            with read_only(conn):
                sql = source.ratings_sql(conn, in_order=duplicates == "last")
                users, movies, values = db.read_triples(conn, sql)
        elif duplicates == "last":
            users, movies, values = db.read_triples(conn, RATINGS_IN_ORDER_SQL)
        else:
            users, movies, values = db.read_triples(conn, RATINGS_SQL, table="ratings", key="id")
    if len(values) == 0:
        where = "the source's ratings" if source else "recsql's ratings table"
        raise NoRatings(f"there are no ratings to train on in {where}; import some with `recsql import ratings FILE`")
    return RatingMatrix.from_triples(users, movies, values, duplicates)


def train(
    engine: Engine,
    *,
    solver: str = DEFAULT_SOLVER,
    features: int | None = None,
    regularization: float | None = None,
    max_iterations: int | None = None,
    samples: int | None = None,
    implicit: bool | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    test_fraction: float | None = None,
    test_file: str | Path | None = None,
    similar_k: int = 20,
    metric: Metric = "cosine",
    recommend_n: int = 10,
    source: Source | str | Path | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train a new model from the stored ratings and make it the active one.

    Solver parameters left as None take the solver's defaults (``als``: 6 features,
    Bayesian averaging over 120 Gibbs samples with implicit feedback; ``cg``: the
    tutorial's 15 features and regularization 0.1).

    ``test_fraction`` holds out that share of the ratings at random (reproducible by
    ``seed``); ``test_file`` scores a fixed file of ratings instead.  The stored model is
    the one fitted to the training part, so its stored metrics describe it.
    ``source`` (a :class:`~recsql.source.Source` or the path of its TOML file) trains
    from the application's own tables instead of recsql's ``ratings``; item titles are
    refreshed from its movies table, if it maps one.
    ``show_progress`` draws a progress bar per phase on stderr; the seconds each phase
    took are returned and stored in ``models.timings`` either way.
    """
    phase = Phases(show=show_progress)
    timings = phase.timings
    model = make_solver(
        solver, features=features, regularization=regularization,
        max_iterations=max_iterations, samples=samples, implicit=implicit, seed=seed,
    )
    # Check every input before the run row exists: a typo must not leave a failed run.
    test = None
    if test_file is not None:
        test = read_matrix(test_file, duplicates)
    check_similarity_params(similar_k, metric)
    if recommend_n < 0:
        raise InvalidParameter(f"recommend_n must not be negative, not {recommend_n}")
    if source is not None and not isinstance(source, Source):
        source = Source.from_toml(source)
    with phase("read"):
        matrix = read_ratings(engine, duplicates, source)
        if source is not None and source.movies_table:
            _refresh_titles(engine, source)
    if test_fraction is not None and test is None:
        matrix, test = split_random(matrix, test_fraction, seed)
    params = {
        **model.params(),
        "duplicates": duplicates,
        "test_fraction": test_fraction,
        "test_file": str(test_file) if test_file is not None else None,
        "similar_k": similar_k,
        "metric": metric,
        "recommend_n": recommend_n,
        "source": source.to_params() if source is not None else None,
    }
    run_id = runs.start(engine, solver, params)
    try:
        with phase("fit", total=model.steps()) as step:
            factors = model.fit(matrix, step)
        with phase("evaluate"):
            metrics = experiment_metrics(factors, matrix, test)
            metrics.update({k: v for k, v in factors.info.items() if isinstance(v, (int, float, bool))})
        n_movies = matrix.n_movies
        with phase("similarities", total=block_count(n_movies, n_movies)) as step:
            indices, scores = top_k_similar(factors.movie_factors, similar_k, metric, step)
        with phase("recommendations", total=block_count(matrix.n_users, n_movies)) as step:
            rec_indices, rec_scores = top_n_unrated(factors, matrix.csr, recommend_n, step=step)
        with phase("write", total=len(runs.OUTPUT_TABLES)) as step:
            runs.write_outputs(
                engine,
                run_id,
                runs.RunOutputs(factors, indices, scores, rec_indices, rec_scores, popular(matrix)),
                metrics=metrics,
                timings=timings,
                n_ratings=matrix.nnz,
                step=step,
            )
        with phase("activate"):
            runs.activate(engine, run_id)
        runs.record_timings(engine, run_id, timings)
    except BaseException as exc:
        runs.fail(engine, run_id, exc)
        raise
    return TrainResult(
        model_id=run_id,
        algorithm=solver,
        params=params,
        metrics=metrics,
        timings=timings,
        n_users=matrix.n_users,
        n_movies=matrix.n_movies,
        n_ratings=matrix.nnz,
    )


def _refresh_titles(engine: Engine, source: Source) -> None:
    """Copy the application's item titles into ``movies`` so the views can show them."""
    import pandas as pd

    with engine.connect() as conn, read_only(conn):
        frame = pd.DataFrame(conn.execute(text(source.movies_sql(conn))).all(), columns=["movie_id", "title", "genres"])
    if frame.empty:
        return
    frame["title"] = frame["title"].astype(str)
    with engine.begin() as conn:
        db.upsert_columns(conn, "movies", "movie_id", {c: frame[c].to_numpy(dtype=object) for c in frame})

"""The stored lists (each user's recommendations, each movie's similar movies) computed
in Spark, for catalogues too large for the driver's cores.

Each Spark task runs the local backend's own list code (:mod:`recsql.algorithms.outputs`) on
its block, so both places rank alike: a recommendation task gets a batch of users (their
rated movies grouped by Spark from the ratings, joined with their vectors), a
similar-movies task a range of movies; the movie side (factors, biases, the choice
model's movie vectors) is broadcast once.  The user side never passes through a
broadcast: a cluster's users can outnumber what every executor should hold.

Where the lists are computed is ``recsql.lists`` (:func:`lists_in_spark`): ``driver``,
``spark`` or ``auto`` (default).  ``auto`` keeps them on the driver for a ``local[...]``
master, where Spark's tasks share the driver's cores and only add their overhead
(MovieLens 100K u1, local[2]: the lists took 0.14 s on the driver, 3.9 s in Spark), and moves them to Spark on a
cluster once users x movies reaches :data:`SPARK_LIST_CELLS`: the driver scores every
cell, which took 18 s on two cores for 162,541 x 59,047 = 9.6 x 10^9 cells (25 M
ratings, docs/benchmarks.md), so a catalogue past 10^10 cells is minutes on a driver
and seconds spread over executors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import Recommended, recommendation_lists, similar_lists
from recsql.algorithms.ranking import FactorChoice, ItemItem
from recsql.algorithms.topk import TopK
from recsql.data.matrix import lookup_ids
from recsql.errors import ModelFitError
from recsql.spark.read import to_pandas
from recsql.threads import using_threads

LIST_PLACES = ("auto", "driver", "spark")
SPARK_LIST_CELLS = 10**10
MOVIES_PER_TASK = 2_000  # similar-movies rows a task lists (each against every movie)


def lists_in_spark(place: str, *, local_master: bool, n_users: int, n_movies: int) -> bool:
    """Whether the lists are computed in Spark (module docstring)."""
    if place != "auto":
        return place == "spark"
    return not local_master and n_users * n_movies >= SPARK_LIST_CELLS


def _movie_side(spark: Any, factors: Factors, items: ItemItem | None) -> Any:
    """The movie side of the model, broadcast to every executor (users left out)."""
    no_users = np.empty(0, dtype=np.int64)
    movies = factors.with_users(no_users, np.zeros((0, factors.user_factors.shape[1])), np.zeros(0))
    choice = items.with_users(no_users) if isinstance(items, FactorChoice) else items
    return spark.sparkContext.broadcast((movies, choice))


def spark_similar(spark: Any, factors: Factors, items: ItemItem | None, k: int, metric: str) -> TopK:
    """Every movie's ``k`` similar movies as :func:`~recsql.algorithms.outputs.similar_lists`
    lists them, in Spark tasks of :data:`MOVIES_PER_TASK` movies."""
    n_movies = len(factors.movie_ids)
    shared = _movie_side(spark, factors, items)
    tasks = spark.range(0, n_movies, MOVIES_PER_TASK).withColumnRenamed("id", "start")
    tasks = tasks.repartition(max(1, -(-n_movies // MOVIES_PER_TASK)))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        movie_side, movie_items = shared.value
        with using_threads(1):  # one core per task: Spark runs a task per core
            for batch in batches:
                for start in batch["start"].to_numpy(np.int64):
                    rows = range(int(start), min(n_movies, int(start) + MOVIES_PER_TASK))
                    top = similar_lists(movie_side, movie_items, k, metric, rows=rows)
                    yield pd.DataFrame(
                        {
                            "row": np.arange(rows.start, rows.stop),
                            "indices": list(top.indices),
                            "scores": list(top.scores),
                        }
                    )

    try:
        table = to_pandas(tasks.mapInPandas(run, "row long, indices array<long>, scores array<double>"))
    finally:
        shared.destroy()
    order = table["row"].to_numpy(np.int64)
    if not np.array_equal(np.sort(order), np.arange(n_movies)):
        raise ModelFitError(f"Spark listed similar movies for {len(order)} of {n_movies} movies")
    width = max(0, min(k, n_movies - 1))
    indices = np.empty((n_movies, width), dtype=np.int64)
    scores = np.empty((n_movies, width))
    if width:
        indices[order] = np.stack(table["indices"].to_numpy())
        scores[order] = np.stack(table["scores"].to_numpy())
    return TopK(indices, scores)


def spark_recommended(spark: Any, frame: Any, factors: Factors, items: ItemItem | None, limit: int) -> Recommended:
    """Every user's ``limit`` recommendations as
    :func:`~recsql.algorithms.outputs.recommendation_lists` ranks them, in Spark tasks over
    batches of users.  ``frame`` holds the training ratings (``user``, ``movie``), whose
    users and movies are exactly ``factors``'."""
    from pyspark.sql import functions as F

    n_movies = len(factors.movie_ids)
    limit = max(0, min(limit, n_movies))
    vectors = [factors.user_factors, factors.user_bias_or_zero[:, None]]
    if isinstance(items, FactorChoice):
        vectors.append(items.user_vectors)
    vector = list(np.hstack(vectors).astype(np.float64))
    users = spark.createDataFrame(pd.DataFrame({"user": factors.user_ids.astype(np.int64), "vector": vector}))
    rated = frame.groupBy("user").agg(F.collect_list("movie").alias("movies"))
    k = factors.user_factors.shape[1]
    width = sum(v.shape[1] for v in vectors)  # the task closes over sizes, never the arrays

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        movie_side, movie_items = shared.value
        with using_threads(1):
            for batch in batches:
                ids = batch["user"].to_numpy(np.int64)
                vector = np.stack(batch["vector"].to_numpy()) if len(batch) else np.zeros((0, width))
                lengths = batch["movies"].map(len).to_numpy(np.int64)
                flat = np.concatenate(batch["movies"].to_numpy()) if len(batch) else np.zeros(0, np.int64)
                cols, _ = lookup_ids(movie_side.movie_ids, flat.astype(np.int64))
                indptr = np.concatenate([[0], np.cumsum(lengths)])
                ratings = sp.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(len(ids), n_movies))
                block = movie_side.with_users(ids, vector[:, :k], vector[:, k])
                choice = (
                    FactorChoice(vector[:, k + 1 :].astype(np.float32), movie_items.movie_vectors)
                    if isinstance(movie_items, FactorChoice)
                    else movie_items
                )
                top = recommendation_lists(block, choice, ratings, limit)
                yield pd.DataFrame(
                    {
                        "user": ids,
                        "indices": list(top.indices),
                        "scores": list(top.scores),
                        "predicted": list(top.predicted),
                    }
                )

    shared = _movie_side(spark, factors, items)
    try:
        table = to_pandas(
            rated.join(users, "user").mapInPandas(
                run, "user long, indices array<long>, scores array<double>, predicted array<double>"
            )
        )
    finally:
        shared.destroy()
    return _gathered(factors, table, limit)


def _gathered(factors: Factors, table: pd.DataFrame, limit: int) -> Recommended:
    """The tasks' rows (one per user, any order) as the driver's arrays, every user once."""
    n_users = len(factors.user_ids)
    rows, known = lookup_ids(factors.user_ids, table["user"].to_numpy(np.int64))
    if not known.all() or len(np.unique(rows)) != n_users:
        raise ModelFitError(f"Spark listed recommendations for {len(table)} of {n_users} users")
    indices = np.full((n_users, limit), -1, dtype=np.int64)
    scores = np.full((n_users, limit), np.nan)
    predicted = np.full((n_users, limit), np.nan)
    if limit:
        indices[rows] = np.stack(table["indices"].to_numpy())
        scores[rows] = np.stack(table["scores"].to_numpy())
        predicted[rows] = np.stack(table["predicted"].to_numpy())
    return Recommended(indices, scores, predicted)

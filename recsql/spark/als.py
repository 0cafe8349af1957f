"""recsql's biased rating model, fitted by Spark MLlib's ALS.

MLlib fits ``rating ~ p_u . q_m`` only; recsql's model is ``global_mean + b_u + b_m +
p_u . q_m`` (:mod:`recsql.model.factors`).  So the biases come first, as two rounds of
shrunken means computed by Spark's aggregations (each bias shrunk by ``1 +
regularization``, as the local ALS's bias coordinate is: both penalise ``regularization
x n_ratings x b^2``), and MLlib's ALS fits the residuals.  MLlib scales its
``regParam`` by each row's rating count ("ALS-WR"), exactly as the local ALS does, so
``--regularization`` means the same on both engines and needs no conversion.

Only the factors come back to the driver (users + movies rows, never the ratings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.errors import InvalidParameter, ModelFitError
from recsql.model.factors import Factors
from recsql.model.solvers.base import Solver
from recsql.progress import Step, no_step
from recsql.spark.read import frame_of_matrix, to_pandas
from recsql.spark.session import SparkSettings, spark_session

BIAS_ROUNDS = 2  # user then movie biases, twice
SPARK_FEATURES, SPARK_SWEEPS = 10, 10  # MLlib's own defaults (rank 10, maxIter 10)


def fit_biased_als(
    frame: Any,
    user_ids: np.ndarray,
    movie_ids: np.ndarray,
    *,
    features: int,
    regularization: float,
    max_iterations: int,
    seed: int,
    clip: tuple[float, float] | None,
    step: Step = no_step,
) -> Factors:
    """Fit the biased model to ``frame`` (``user``, ``movie``, ``value``) in Spark.

    ``user_ids`` and ``movie_ids`` (ascending) say which rows the returned Factors has:
    those of the training matrix, every one of them in ``frame``.  ``step(1)`` is called
    after the biases and after the factors.
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    frame = frame.cache()
    mu = float(frame.agg(F.avg("value")).first()[0])
    shrink = 1.0 + regularization
    movie_bias = frame.select("movie").distinct().withColumn("movie_bias", F.lit(0.0))
    for _ in range(BIAS_ROUNDS):
        user_bias = (frame.join(movie_bias, "movie")
                     .groupBy("user")
                     .agg((F.sum(F.col("value") - mu - F.col("movie_bias")) / (shrink * F.count("*")))
                          .alias("user_bias"))).cache()
        movie_bias = (frame.join(user_bias, "user")
                      .groupBy("movie")
                      .agg((F.sum(F.col("value") - mu - F.col("user_bias")) / (shrink * F.count("*")))
                           .alias("movie_bias"))).cache()
    step(1)
    residuals = (frame.join(user_bias, "user").join(movie_bias, "movie")
                 .select("user", "movie",
                         (F.col("value") - mu - F.col("user_bias") - F.col("movie_bias")).alias("residual")))
    # One block of users and of movies per core Spark has (its default of 10 blocks
    # makes tiny tasks on a small machine and too few on a cluster).
    blocks = max(2, int(frame.sparkSession.sparkContext.defaultParallelism))
    als = ALS(rank=features, maxIter=max_iterations, regParam=regularization, seed=seed,
              numUserBlocks=blocks, numItemBlocks=blocks,
              userCol="user", itemCol="movie", ratingCol="residual", checkpointInterval=5,
              intermediateStorageLevel="MEMORY_AND_DISK", finalStorageLevel="MEMORY_AND_DISK")
    model = als.fit(residuals)
    users = _side(model.userFactors, user_bias, "user", user_ids, features)
    movies = _side(model.itemFactors, movie_bias, "movie", movie_ids, features)
    frame.unpersist()
    step(1)
    return Factors(
        user_ids=user_ids, movie_ids=movie_ids,
        user_factors=users[0], movie_factors=movies[0], global_mean=mu,
        user_bias=users[1], movie_bias=movies[1], clip=clip,
        info={"iterations": max_iterations, "samples": 0},
    )


def _side(factors: Any, biases: Any, column: str, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One side's factors and biases, in the order of ``ids``."""
    table = to_pandas(factors.withColumnRenamed("id", column).join(biases, column))
    rows, known = lookup_ids(ids, table[column].to_numpy(np.int64))
    if not known.all() or len(rows) != len(ids):  # ids are distinct on both sides: equal sets
        raise ModelFitError(f"Spark's ALS returned factors for {int(known.sum())} of {len(ids)} {column}s")
    vectors = np.zeros((len(ids), k))
    bias = np.zeros(len(ids))
    vectors[rows] = np.stack(table["features"].to_numpy())
    bias[rows] = table[f"{column}_bias"].to_numpy(np.float64)
    return vectors, bias


class SparkALS(Solver):
    """The Spark engine as a :class:`~recsql.model.solvers.base.Solver`: the matrix goes
    to Spark as Arrow and the factors come back (``recsql evaluate --engine spark``).
    A retrain from PostgreSQL reads over JDBC instead and calls :func:`fit_biased_als`."""

    name = "spark-als"

    def __init__(self, features: int = SPARK_FEATURES, regularization: float = 0.1,
                 max_iterations: int = SPARK_SWEEPS, seed: int = 0, settings: SparkSettings | None = None):
        super().__init__(features, regularization, max_iterations, seed)
        self.settings = settings or SparkSettings.of(None, None)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "engine": "spark", "spark_master": self.settings.master}

    def plan(self, n_users: int, n_movies: int, nnz: int) -> str:
        return spark_plan(self.settings, self.features, self.max_iterations, jdbc=False)

    def steps(self) -> int:
        return 2

    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        with spark_session(self.settings) as spark:
            return self.fit_frame(frame_of_matrix(spark, matrix), matrix, step)

    def fit_frame(self, frame: Any, matrix: RatingMatrix, step: Step = no_step) -> Factors:
        """Fit to ``frame``, a DataFrame of ``matrix``'s ratings already in Spark (a
        retrain's JDBC read); the Factors' rows follow ``matrix``."""
        return fit_biased_als(
            frame, matrix.user_ids, matrix.movie_ids, features=self.features,
            regularization=self.regularization, max_iterations=self.max_iterations, seed=self.seed,
            clip=(float(matrix.values.min()), float(matrix.values.max())), step=step,
        ).check_finite()


def spark_plan(settings: SparkSettings, features: int, sweeps: int, *, jdbc: bool) -> str:
    """The line a Spark retrain prints and stores as its plan."""
    read = "ratings read over JDBC in partitions" if jdbc else "ratings handed over as Arrow"
    return (f"Spark MLlib ALS on {settings.master}, {features} features, {sweeps} sweeps, biases by "
            f"{BIAS_ROUNDS} rounds of shrunken means; {read}")


def spark_solver(solver: str, *, samples: int | None = None, implicit: bool | None = None,
                 time_budget: float | None = None, settings: SparkSettings | None = None,
                 **params: Any) -> SparkALS:
    """The Spark engine's solver for the local solver options, refusing the ones MLlib's
    plain ALS has no counterpart for (better refused than silently ignored)."""
    if solver != "als":
        raise InvalidParameter(f"the Spark engine fits ALS; --solver {solver} runs on the local engine only")
    if samples:
        raise InvalidParameter("the Spark engine fits plain ALS: --samples must be 0 or left out")
    if implicit:
        raise InvalidParameter("the Spark engine has no implicit-feedback priors: leave --implicit out")
    if time_budget is not None:
        raise InvalidParameter("--time-budget plans the local sampler's draws; the Spark engine does not take it")
    return SparkALS(settings=settings, **{k: v for k, v in params.items() if v is not None})

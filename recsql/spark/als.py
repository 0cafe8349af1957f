"""recsql's biased rating model, fitted by Spark MLlib's ALS.

MLlib fits ``rating ~ p_u . q_m`` only; recsql's model is ``global_mean + b_u + b_m +
p_u . q_m`` (:mod:`recsql.algorithms.factors`).  So the biases come first, as two rounds of
shrunken means computed by Spark's aggregations (each bias shrunk by ``1 +
regularization``, as the local ALS's bias coordinate is: both penalise ``regularization
x n_ratings x b^2``), and MLlib's ALS fits the residuals.  Biases fixed before any
factor exist absorb taste the factors would explain (the local ALS fits both
together), so a short warm-up fit (``recsql.warmup.sweeps``, default half the sweeps)
comes first and the biases are re-estimated against its predictions before the full
fit: on MovieLens 100K u1 that took the test RMSE from 0.9444 to 0.9395 (the local
plain ALS: 0.9308) for 1.5 times the sweeps (docs/decisions.md).  MLlib scales its
``regParam`` by each row's rating count ("ALS-WR"), exactly as the local ALS does, so
``--regularization`` means the same on both backends and needs no conversion.

The lists' choice model is fitted here too (:func:`fit_choice_model`): MLlib's
implicit-feedback ALS over who rated what, the counterpart of the local backend's EASE.

Only the factors come back to the driver (users + movies rows, never the ratings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsql.algorithms.factors import Factors
from recsql.algorithms.ranking import FactorChoice
from recsql.algorithms.solvers.base import Solver
from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.errors import InvalidParameter, ModelFitError
from recsql.progress import Step, no_step
from recsql.spark.lists import LIST_PLACES
from recsql.spark.read import frame_of_matrix, to_pandas
from recsql.spark.session import SparkSettings, spark_session

BIAS_ROUNDS = 2  # user then movie biases, twice
SPARK_FEATURES, SPARK_SWEEPS = 10, 10  # MLlib's own defaults (rank 10, maxIter 10)
# The choice model (implicit ALS on the 0/1 rated-by pattern, confidence 1 + alpha):
# chosen on MovieLens 100K u1 over ranks 10-64, regParam 0.01-10, alpha 0.1-40 and
# rating-weighted confidence; NDCG@10 of the stored recommendations 0.4695
# (docs/decisions.md).  MLlib scales regParam by counts here too, hence a small one.
CHOICE_FEATURES, CHOICE_REGULARIZATION, CHOICE_ALPHA, CHOICE_SWEEPS = 32, 0.1, 1.0, 10


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
    warmup_sweeps: int = 0,
    step: Step = no_step,
) -> Factors:
    """Fit the biased model to ``frame`` (``user``, ``movie``, ``value``) in Spark.

    ``user_ids`` and ``movie_ids`` (ascending) say which rows the returned Factors has:
    those of the training matrix, every one of them in ``frame``.  ``warmup_sweeps``
    (0: none): the short fit the biases are re-estimated against (module docstring).
    ``step(1)`` is called after the biases and after the factors.
    """
    from pyspark.sql import functions as F

    frame = frame.cache()
    mu = float(frame.agg(F.avg("value")).first()[0])
    shrink = 1.0 + regularization
    movie_bias = frame.select("movie").distinct().withColumn("movie_bias", F.lit(0.0))
    user_bias, movie_bias = _biases(frame, mu, shrink, movie_bias)
    step(1)

    def fit(sweeps: int) -> Any:
        residuals = (
            frame.join(user_bias, "user")
            .join(movie_bias, "movie")
            .select("user", "movie", (F.col("value") - mu - F.col("user_bias") - F.col("movie_bias")).alias("residual"))
        )
        return _als(frame, features, regularization, sweeps, seed, "residual").fit(residuals)

    if warmup_sweeps > 0:
        taste = (
            fit(warmup_sweeps)
            .transform(frame)
            .select("user", "movie", (F.col("value") - F.col("prediction")).alias("value"))
        )
        user_bias, movie_bias = _biases(taste, mu, shrink, movie_bias)
    model = fit(max_iterations)
    users = _side(model.userFactors, user_bias, "user", user_ids, features)
    movies = _side(model.itemFactors, movie_bias, "movie", movie_ids, features)
    frame.unpersist()
    step(1)
    return Factors(
        user_ids=user_ids,
        movie_ids=movie_ids,
        user_factors=users[0],
        movie_factors=movies[0],
        global_mean=mu,
        user_bias=users[1],
        movie_bias=movies[1],
        clip=clip,
        info={"iterations": max_iterations, "samples": 0},
    )


def fit_choice_model(frame: Any, user_ids: np.ndarray, movie_ids: np.ndarray, *, seed: int) -> FactorChoice:
    """The lists' choice model: MLlib's implicit ALS over who rated ``frame``'s movies
    (each rating a 1, whatever its value), rows as ``user_ids`` and ``movie_ids``."""
    from pyspark.sql import functions as F

    picked = frame.select("user", "movie", F.lit(1.0).alias("picked"))
    model = _als(
        frame,
        CHOICE_FEATURES,
        CHOICE_REGULARIZATION,
        CHOICE_SWEEPS,
        seed,
        "picked",
        implicitPrefs=True,
        alpha=CHOICE_ALPHA,
    ).fit(picked)
    users = _side(model.userFactors, None, "user", user_ids, CHOICE_FEATURES)[0]
    movies = _side(model.itemFactors, None, "movie", movie_ids, CHOICE_FEATURES)[0]
    if not (np.isfinite(users).all() and np.isfinite(movies).all()):
        raise ModelFitError("Spark's implicit ALS produced non-finite vectors")
    return FactorChoice(users.astype(np.float32), movies.astype(np.float32))


def _als(frame: Any, rank: int, regularization: float, sweeps: int, seed: int, column: str, **more: Any) -> Any:
    """MLlib's ALS estimator as recsql runs it."""
    from pyspark.ml.recommendation import ALS

    # One block of users and of movies per core Spark has (its default of 10 blocks
    # makes tiny tasks on a small machine and too few on a cluster).
    blocks = max(2, int(frame.sparkSession.sparkContext.defaultParallelism))
    return ALS(
        rank=rank,
        maxIter=sweeps,
        regParam=regularization,
        seed=seed,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol="user",
        itemCol="movie",
        ratingCol=column,
        checkpointInterval=5,
        intermediateStorageLevel="MEMORY_AND_DISK",
        finalStorageLevel="MEMORY_AND_DISK",
        **more,
    )


def _biases(frame: Any, mu: float, shrink: float, movie_bias: Any) -> tuple[Any, Any]:
    """User then movie biases of ``frame``'s ``value`` - mu, BIAS_ROUNDS times, each a
    sum over the bias's ratings shrunk by ``shrink`` x their count, starting from
    ``movie_bias``."""
    from pyspark.sql import functions as F

    for _ in range(BIAS_ROUNDS):
        user_bias = (
            frame.join(movie_bias, "movie")
            .groupBy("user")
            .agg((F.sum(F.col("value") - mu - F.col("movie_bias")) / (shrink * F.count("*"))).alias("user_bias"))
        ).cache()
        movie_bias = (
            frame.join(user_bias, "user")
            .groupBy("movie")
            .agg((F.sum(F.col("value") - mu - F.col("user_bias")) / (shrink * F.count("*"))).alias("movie_bias"))
        ).cache()
    return user_bias, movie_bias


def _side(factors: Any, biases: Any | None, column: str, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One side's factors and biases (zeros without ``biases``), in the order of ``ids``."""
    factors = factors.withColumnRenamed("id", column)
    table = to_pandas(factors if biases is None else factors.join(biases, column))
    rows, known = lookup_ids(ids, table[column].to_numpy(np.int64))
    if not known.all() or len(rows) != len(ids):  # ids are distinct on both sides: equal sets
        raise ModelFitError(f"Spark's ALS returned factors for {int(known.sum())} of {len(ids)} {column}s")
    vectors = np.zeros((len(ids), k))
    bias = np.zeros(len(ids))
    vectors[rows] = np.stack(table["features"].to_numpy())
    if biases is not None:
        bias[rows] = table[f"{column}_bias"].to_numpy(np.float64)
    return vectors, bias


class SparkALS(Solver):
    """MLlib's ALS as a :class:`~recsql.algorithms.solvers.base.Solver`: its parameters, its
    plan, and a fit of a matrix handed to Spark.  The Spark backend
    (:mod:`recsql.backends.spark`) fits DataFrames it already holds with :func:`fit_frame`."""

    name = "spark-als"

    def __init__(
        self,
        features: int = SPARK_FEATURES,
        regularization: float = 0.1,
        max_iterations: int = SPARK_SWEEPS,
        seed: int = 0,
        settings: SparkSettings | None = None,
    ):
        super().__init__(features, regularization, max_iterations, seed)
        self.settings = settings or SparkSettings.of(None, None)
        # Read now, so a bad value is refused before any run starts.
        self.warmup_sweeps = self.settings.recsql_int("recsql.warmup.sweeps", self.max_iterations // 2, minimum=0)
        self.lists = self.settings.recsql_choice("recsql.lists", LIST_PLACES)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "backend": "spark",
            "spark_master": self.settings.master,
            "warmup_sweeps": self.warmup_sweeps,
        }

    def plan(self, n_users: int, n_movies: int, nnz: int) -> str:
        return spark_plan(self, jdbc=False)

    def steps(self) -> int:
        return 2

    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        """The matrix handed to a Spark session of its own (the Spark backend's runs
        share one session and call :func:`fit_frame` instead)."""
        with spark_session(self.settings) as spark:
            return fit_frame(self, frame_of_matrix(spark, matrix).cache(), matrix, step)


def spark_plan(solver: SparkALS, *, jdbc: bool) -> str:
    """The line a Spark fit logs and stores as its plan."""
    read = "ratings read over JDBC in partitions" if jdbc else "ratings read by recsql and handed to Spark"
    warmup = f", re-estimated after a {solver.warmup_sweeps}-sweep fit" if solver.warmup_sweeps else ""
    return (
        f"Spark MLlib ALS on {solver.settings.master}, {solver.features} features, {solver.max_iterations} "
        f"sweeps, biases by {BIAS_ROUNDS} rounds of shrunken means{warmup}; {read}"
    )


def fit_frame(solver: SparkALS, frame: Any, matrix: RatingMatrix, step: Step = no_step) -> Factors:
    """``solver``'s fit of ``frame``, a DataFrame of ``matrix``'s ratings already in
    Spark; the Factors' rows follow ``matrix``."""
    return fit_biased_als(
        frame,
        matrix.user_ids,
        matrix.movie_ids,
        features=solver.features,
        regularization=solver.regularization,
        max_iterations=solver.max_iterations,
        seed=solver.seed,
        clip=(float(matrix.values.min()), float(matrix.values.max())),
        warmup_sweeps=solver.warmup_sweeps,
        step=step,
    ).check_finite()


def spark_solver(
    solver: str,
    *,
    samples: int | None = None,
    implicit: bool | None = None,
    time_budget: float | None = None,
    settings: SparkSettings | None = None,
    **params: Any,
) -> SparkALS:
    """The Spark backend's solver for the local solver options, refusing the ones MLlib's
    plain ALS has no counterpart for (better refused than silently ignored)."""
    if solver != "als":
        raise InvalidParameter(f"the Spark backend fits ALS; --solver {solver} runs on the local backend only")
    if samples:
        raise InvalidParameter("the Spark backend fits plain ALS: --samples must be 0 or left out")
    if implicit:
        raise InvalidParameter("the Spark backend has no implicit-feedback priors: leave --implicit out")
    if time_budget is not None:
        raise InvalidParameter("--time-budget plans the local sampler's draws; the Spark backend does not take it")
    return SparkALS(settings=settings, **{k: v for k, v in params.items() if v is not None})

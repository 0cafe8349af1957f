"""The Spark backend: Apache Spark MLlib fits (:mod:`recsql.spark.als`) on the ratings
as a DataFrame (read by Spark itself over JDBC from PostgreSQL, else handed over from
recsql's reader: :mod:`recsql.spark.read`), and the lists are computed on the driver or
in Spark (:func:`~recsql.spark.lists.lists_in_spark`).

The session starts inside the run, after its row exists: a Spark that cannot start (a
master that does not answer) or dies mid-fit is a failed run on record.  Every matrix a
fit is asked for gets its DataFrame cached once, until :meth:`Compute.release`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import Recommended, recommendation_lists, similar_lists
from recsql.algorithms.ranking import ItemItem, ItemPenalty
from recsql.algorithms.topk import TopK
from recsql.backends.base import Backend, Compute, RatingsAt
from recsql.data.matrix import RatingMatrix
from recsql.progress import Step
from recsql.spark.als import SparkALS, fit_choice_model, fit_frame, spark_plan, spark_solver
from recsql.spark.lists import lists_in_spark, spark_recommended, spark_similar
from recsql.spark.read import frame_of_matrix, jdbc_ratings, matrix_of_frame, reads_over_jdbc
from recsql.spark.session import SparkSettings, spark_session
from recsql.threads import thread_count


class SparkBackend(Backend):
    name = "spark"
    solver: SparkALS

    @classmethod
    def of(
        cls,
        solver: str,
        *,
        spark_master: str | None = None,
        spark_conf: Sequence[str] | Mapping[str, str] | None = None,
        **params: Any,
    ) -> SparkBackend:
        """The master defaults to ``local[N]``, N the threads this process may use."""
        settings = SparkSettings.of(spark_master or f"local[{thread_count()}]", spark_conf)
        return cls(spark_solver(solver, settings=settings, **params))

    def plan(self, ratings: RatingsAt) -> str:
        """Known without reading: Spark reads inside the run (module docstring)."""
        jdbc = reads_over_jdbc(ratings.engine, ratings.duplicates, ratings.source)
        return spark_plan(self.solver, jdbc=jdbc)

    @contextmanager
    def session(self, ratings: RatingsAt | None) -> Iterator[Compute]:
        jdbc = ratings is not None and reads_over_jdbc(ratings.engine, ratings.duplicates, ratings.source)
        with spark_session(self.solver.settings, jdbc=jdbc) as spark:
            compute = _SparkCompute(spark, self.solver, jdbc)
            try:
                yield compute
            finally:
                compute.release_all()


class _SparkCompute(Compute):
    def __init__(self, spark: Any, solver: SparkALS, jdbc: bool):
        self.spark, self.solver, self.jdbc = spark, solver, jdbc
        self.frames: dict[int, tuple[RatingMatrix, Any]] = {}  # id(matrix) -> (matrix, its cached DataFrame)
        self.in_spark: bool | None = None  # where the lists go: settled by the first matrix read or fitted

    def read(self, ratings: RatingsAt) -> RatingMatrix:
        if not self.jdbc:
            matrix = ratings.read()
        else:
            settings = self.solver.settings
            frame = jdbc_ratings(self.spark, ratings.engine, settings, ratings.duplicates, ratings.source).cache()
            matrix = matrix_of_frame(frame, ratings.duplicates)
            self.frames[id(matrix)] = (matrix, frame)
        self._settle_lists(matrix)
        return matrix

    def fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        self._settle_lists(matrix)
        return fit_frame(self.solver, self._frame(matrix), matrix, step)

    def items(self, matrix: RatingMatrix, metric: str, regularization: ItemPenalty) -> ItemItem | None:
        if metric != "items":
            return None
        return fit_choice_model(self._frame(matrix), matrix.user_ids, matrix.movie_ids, seed=self.solver.seed)

    def similar(self, factors: Factors, items: ItemItem | None, k: int, metric: str, step: Step) -> TopK:
        if self.in_spark:
            return spark_similar(self.spark, factors, items, k, metric)
        return similar_lists(factors, items, k, metric, step)

    def recommended(
        self, factors: Factors, items: ItemItem | None, matrix: RatingMatrix, n: int, step: Step
    ) -> Recommended:
        if self.in_spark:
            return spark_recommended(self.spark, self._frame(matrix), factors, items, n)
        return recommendation_lists(factors, items, matrix.csr, n, step)

    def release(self, matrix: RatingMatrix) -> None:
        kept = self.frames.pop(id(matrix), None)
        if kept is not None:
            kept[1].unpersist()

    def release_all(self) -> None:
        for matrix, _frame in list(self.frames.values()):
            self.release(matrix)

    def _frame(self, matrix: RatingMatrix) -> Any:
        """``matrix``'s ratings in Spark: the one read, or handed over once and cached."""
        if id(matrix) not in self.frames:
            self.frames[id(matrix)] = (matrix, frame_of_matrix(self.spark, matrix).cache())
        return self.frames[id(matrix)][1]

    def _settle_lists(self, matrix: RatingMatrix) -> None:
        """Lists go to Spark by the whole catalogue's size: the first matrix seen is
        every rating (a retrain reads before it splits; an evaluation fits a training
        share, nearly as large)."""
        if self.in_spark is None:
            self.in_spark = lists_in_spark(
                self.solver.lists,
                local_master=self.solver.settings.is_local,
                n_users=matrix.n_users,
                n_movies=matrix.n_movies,
            )

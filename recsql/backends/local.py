"""The local backend: this process reads, fits (:mod:`recsql.algorithms.solvers`) and lists
(:mod:`recsql.algorithms.outputs`) with its own threads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import Recommended, item_model, recommendation_lists, similar_lists
from recsql.algorithms.ranking import ItemItem, ItemPenalty
from recsql.algorithms.solvers import make_solver
from recsql.algorithms.topk import TopK
from recsql.backends.base import Backend, Compute, RatingsAt
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.progress import Step


class LocalBackend(Backend):
    name = "local"

    @classmethod
    def of(
        cls,
        solver: str,
        *,
        spark_master: str | None = None,
        spark_conf: Sequence[str] | Mapping[str, str] | None = None,
        **params: Any,
    ) -> LocalBackend:
        if spark_master is not None or spark_conf:
            raise InvalidParameter("--spark-master and --spark-conf go with --backend spark")
        return cls(make_solver(solver, **params))

    def plan(self, ratings: RatingsAt) -> str:
        """The solver's plan for the ratings' size: they are read here, before the run exists."""
        matrix = ratings.read()
        return self.solver.plan(matrix.n_users, matrix.n_movies, matrix.nnz)

    @contextmanager
    def session(self, ratings: RatingsAt | None) -> Iterator[Compute]:
        yield _LocalCompute(self)


class _LocalCompute(Compute):
    def __init__(self, backend: LocalBackend):
        self.solver = backend.solver

    def read(self, ratings: RatingsAt) -> RatingMatrix:
        return ratings.read()

    def fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        return self.solver.fit(matrix, step)

    def items(self, matrix: RatingMatrix, metric: str, regularization: ItemPenalty) -> ItemItem | None:
        return item_model(matrix, metric, regularization, self.solver.seed)

    def similar(self, factors: Factors, items: ItemItem | None, k: int, metric: str, step: Step) -> TopK:
        return similar_lists(factors, items, k, metric, step)

    def recommended(
        self, factors: Factors, items: ItemItem | None, matrix: RatingMatrix, n: int, step: Step
    ) -> Recommended:
        return recommendation_lists(factors, items, matrix.csr, n, step)

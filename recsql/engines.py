"""Where a fit runs: the local engine (this process, :mod:`recsql.model.solvers`) or
Apache Spark (:mod:`recsql.spark`).  Train and evaluate choose their solver here, so
both engines take the same options and refuse the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.model.factors import Factors
from recsql.model.outputs import item_model
from recsql.model.ranking import ItemItem
from recsql.model.solvers import Solver, make_solver
from recsql.spark.als import SparkALS, spark_solver
from recsql.spark.session import SparkSettings
from recsql.threads import thread_count

EngineName = Literal["local", "spark"]
ENGINES: tuple[str, ...] = ("local", "spark")


def engine_solver(
    engine_name: str,
    solver: str,
    *,
    spark_master: str | None = None,
    spark_conf: Sequence[str] | Mapping[str, str] | None = None,
    **params: Any,
) -> Solver:
    """The solver that fits on ``engine_name`` with the local solver options ``params``
    (``features``, ``regularization``, ...; None takes the default).  The Spark master
    defaults to ``local[N]``, N the threads this process may use."""
    if engine_name not in ENGINES:
        raise InvalidParameter(f"engine must be one of {', '.join(ENGINES)}, not {engine_name!r}")
    if engine_name == "spark":
        settings = SparkSettings.of(spark_master or f"local[{thread_count()}]", spark_conf)
        return spark_solver(solver, settings=settings, **params)
    if spark_master is not None or spark_conf:
        raise InvalidParameter("--spark-master and --spark-conf go with --engine spark")
    return make_solver(solver, **params)


def fit_models(
    model: Solver, matrix: RatingMatrix, metric: str, item_regularization: float
) -> tuple[Factors, ItemItem | None]:
    """The rating model and the lists' choice model (None for ``metric`` cosine or l1)
    as ``model``'s engine fits them: the local engine's EASE
    (:func:`~recsql.model.outputs.item_model`), or Spark's implicit ALS fitted in the
    rating model's session."""
    if isinstance(model, SparkALS):
        return model.fit_with_choice(matrix, with_choice=metric == "items")
    return model.fit(matrix), item_model(matrix, metric, item_regularization)

"""Compute backends: where a run's ratings are read into, its models fitted and its
lists computed.  ``local`` is this process (:mod:`recsql.algorithms.solvers`); ``spark`` is
Apache Spark MLlib (:mod:`recsql.spark`).  Both meet :class:`~recsql.backends.base.Backend`,
so a retrain and an evaluation run the same steps on either and never ask which one
they have; :func:`make_backend` is the one place that picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from recsql.backends.base import Backend, Compute, RatingsAt
from recsql.backends.local import LocalBackend
from recsql.backends.spark import SparkBackend
from recsql.errors import InvalidParameter

BackendName = Literal["local", "spark"]
BACKENDS: dict[str, type[Backend]] = {LocalBackend.name: LocalBackend, SparkBackend.name: SparkBackend}


def make_backend(
    backend: str,
    solver: str,
    *,
    spark_master: str | None = None,
    spark_conf: Sequence[str] | Mapping[str, str] | None = None,
    **params: Any,
) -> Backend:
    """The backend called ``backend``, fitting ``solver`` with the solver options
    ``params`` (``features``, ``regularization``, ...; None takes the default).  Every
    option is checked here, before anything is read or written."""
    if backend not in BACKENDS:
        raise InvalidParameter(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return BACKENDS[backend].of(solver, spark_master=spark_master, spark_conf=spark_conf, **params)


__all__ = ["BACKENDS", "Backend", "BackendName", "Compute", "RatingsAt", "make_backend"]

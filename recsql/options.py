"""What a fit is, in one object: the options ``train``, ``evaluate`` and ``tune`` share
(the CLI's flags carry the same names).  Defaults live here once; a run's options are
checked by :meth:`FitOptions.backend_of` before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from recsql.algorithms.outputs import ListMetric, check_list_params
from recsql.algorithms.solvers import DEFAULT_SOLVER
from recsql.backends import Backend, BackendName, make_backend
from recsql.data.matrix import DuplicatePolicy
from recsql.errors import InvalidParameter

SOLVER_OPTIONS = ("features", "regularization", "max_iterations", "samples", "implicit", "time_budget", "seed")
Options = TypeVar("Options", bound="FitOptions")


@dataclass(frozen=True)
class FitOptions:
    """A fit: ``solver`` with its parameters (None: the solver's default for the data's
    size), how repeated ratings resolve, how the lists are ordered (``metric``;
    ``item_regularization``, None: chosen from the data per fit) and how long the
    similar-movie lists are, and where it runs (``backend``, with Spark's
    ``spark_master`` and ``spark_conf``; ``threads`` caps this process's threads and
    database connections)."""

    solver: str = DEFAULT_SOLVER
    features: int | None = None
    regularization: float | None = None
    max_iterations: int | None = None
    samples: int | None = None
    implicit: bool | None = None
    time_budget: float | None = None
    seed: int = 0
    duplicates: DuplicatePolicy = "max"
    similar_k: int = 20
    metric: ListMetric = "items"
    item_regularization: float | None = None
    backend: BackendName = "local"
    spark_master: str | None = None
    spark_conf: Sequence[str] | Mapping[str, str] | None = None
    threads: int | None = None

    @classmethod
    def given(cls: type[Options], options: Options | None, overrides: Mapping[str, Any]) -> Options:
        """``options`` (default: the defaults) with ``overrides`` by name; an unknown name is refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InvalidParameter(f"unknown option {', '.join(unknown)} (options: {', '.join(sorted(names))})")
        base = options if options is not None else cls()
        return cls(**{**{f.name: getattr(base, f.name) for f in fields(cls)}, **overrides})

    def solver_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SOLVER_OPTIONS}

    def backend_of(self) -> Backend:
        """The backend these options fit on, every option checked."""
        check_list_params(self.similar_k, self.metric)
        return make_backend(
            self.backend,
            self.solver,
            spark_master=self.spark_master,
            spark_conf=self.spark_conf,
            **self.solver_params(),
        )

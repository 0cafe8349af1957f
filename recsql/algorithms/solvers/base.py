"""The contract every solver meets.

A solver is a pure function of a :class:`~recsql.data.matrix.RatingMatrix` and its
parameters: it never touches the database.  It fills a
:class:`~recsql.algorithms.factors.Factors`; prediction, similarity and ranking are computed
from Factors in one shared place (:mod:`recsql.algorithms.factors`), never per solver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from recsql.algorithms.factors import Factors
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter, ModelFitError
from recsql.progress import Step, no_step


class Solver(ABC):
    """Fit factors to a rating matrix.  Subclasses implement :meth:`_fit` only.

    Every solver takes at least these parameters (checked here, stored with each run).
    """

    name: ClassVar[str]

    def __init__(self, features: int, regularization: float, max_iterations: int, seed: int):
        if features < 1:
            raise InvalidParameter("features must be at least 1")
        if regularization < 0:
            raise InvalidParameter("regularization must not be negative")
        if max_iterations < 1:
            raise InvalidParameter("max_iterations must be at least 1")
        self.features = features
        self.regularization = regularization
        self.max_iterations = max_iterations
        self.seed = seed

    def params(self) -> dict[str, Any]:
        """The parameters that define this solver's result (stored with each run)."""
        return {
            "features": self.features,
            "regularization": self.regularization,
            "max_iterations": self.max_iterations,
            "seed": self.seed,
        }

    def plan(self, n_users: int, n_movies: int, nnz: int) -> str:
        """Settle what :meth:`fit` will do on data of this size (solvers whose defaults
        follow the data's size choose here; :meth:`params` then reports the choice) and
        say it in a line."""
        return f"{self.name}, {self.features} features, {self.max_iterations} iterations"

    @abstractmethod
    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors: ...

    def steps(self) -> int | None:
        """How many times :meth:`fit` calls ``step`` (None: not known in advance)."""
        return None

    def fit(self, matrix: RatingMatrix, step: Step | None = None) -> Factors:
        """Fit factors; ``step(1)`` is called once per iteration (for progress bars)."""
        if matrix.nnz == 0:
            raise ValueError("cannot fit an empty rating matrix")
        try:
            factors = self._fit(matrix, step or no_step)
        except np.linalg.LinAlgError as exc:  # e.g. a posterior with no spread: one rating
            raise ModelFitError(
                f"{type(self).__name__} could not fit {matrix.nnz} ratings of {matrix.n_users} users and "
                f"{matrix.n_movies} movies ({exc}); with this few ratings try --samples 0"
            ) from exc
        return factors.check_finite()

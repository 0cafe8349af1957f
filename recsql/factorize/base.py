"""The contract every solver meets, and the factors they all produce.

A solver is a pure function of a :class:`~recsql.matrix.RatingMatrix` and its
parameters: it never touches the database.  It fills a :class:`Factors`; prediction,
similarity and ranking are computed from Factors in one shared place
(:mod:`recsql.neighbors`, :mod:`recsql.evaluate`), never per solver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recsql.errors import InvalidParameter, ModelFitError
from recsql.matrix import RatingMatrix
from recsql.progress import Step, no_step


PREDICT_CHUNK = 1_000_000


@dataclass(frozen=True)
class Factors:
    """A fitted model: rating(u, m) = global_mean + user_bias[u] + movie_bias[m] + U[u]·M[m].

    Rows follow the training matrix: ``user_factors[i]`` belongs to ``user_ids[i]``.
    Solvers without biases leave them at zero (the tutorial's model is U·M alone).
    ``clip`` bounds predictions to the rating scale seen in training (None: unbounded,
    as the tutorial's model is).
    """

    user_ids: np.ndarray
    movie_ids: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    global_mean: float = 0.0
    user_bias: np.ndarray | None = None
    movie_bias: np.ndarray | None = None
    clip: tuple[float, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Predicted ratings for (row, col) index pairs of the training matrix.

        Works in chunks, so scoring 25 million ratings never gathers 25 million
        feature vectors at once.
        """
        pred = np.empty(len(rows))
        for start in range(0, len(rows), PREDICT_CHUNK):
            r, c = rows[start : start + PREDICT_CHUNK], cols[start : start + PREDICT_CHUNK]
            part = np.einsum("ij,ij->i", self.user_factors[r], self.movie_factors[c])
            part += self.global_mean
            if self.user_bias is not None:
                part += self.user_bias[r]
            if self.movie_bias is not None:
                part += self.movie_bias[c]
            pred[start : start + len(r)] = part
        if self.clip is not None:
            np.clip(pred, *self.clip, out=pred)
        return pred

    def check_finite(self) -> Factors:
        """Raise :class:`ModelFitError` if the solver diverged; a NaN must never be written."""
        arrays = {"user factors": self.user_factors, "movie factors": self.movie_factors}
        if self.user_bias is not None:
            arrays["user biases"] = self.user_bias
        if self.movie_bias is not None:
            arrays["movie biases"] = self.movie_bias
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise ModelFitError(
                    f"the solver produced non-finite {name}; try a larger --regularization"
                )
        if not np.isfinite(self.global_mean):
            raise ModelFitError("the solver produced a non-finite global mean")
        return self


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

    @abstractmethod
    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors: ...

    def steps(self) -> int | None:
        """How many times :meth:`fit` calls ``step`` (None: not known in advance)."""
        return None

    def fit(self, matrix: RatingMatrix, step: Step | None = None) -> Factors:
        """Fit factors; ``step(1)`` is called once per iteration (for progress bars)."""
        if matrix.nnz == 0:
            raise ValueError("cannot fit an empty rating matrix")
        return self._fit(matrix, step or no_step).check_finite()

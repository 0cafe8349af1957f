"""The tutorial's matrix factorization, made sparse.

The tutorial minimizes

    J(U, M) = 1/2 * sum over known (u, m) of (U[u]·M[m] - r[u, m])^2
              + lambda/2 * (||U||^2 + ||M||^2)

with scipy's nonlinear conjugate gradient (``fmin_cg``, at most 3000 iterations),
starting from ``np.random.seed(0); U = randn(users, k); M = randn(movies, k)``.  It does
so on a dense users x movies array with a 0/1 mask, which stops working well before
a million ratings.  :class:`ConjugateGradient` computes the same J and gradient over
the known cells only, so memory and time grow with the number of ratings.

``reference=True`` runs the tutorial's dense computation instead (same start, same
optimizer).  It exists to test the sparse one against and refuses large matrices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from recsql.algorithms.factors import Factors
from recsql.algorithms.solvers.base import Solver
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.progress import Step

# J and its gradient at x.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]

# The dense reference builds several users x movies arrays; beyond this it is pointless.
DENSE_LIMIT = 20_000_000


class ConjugateGradient(Solver):
    """Low-rank factorization by nonlinear conjugate gradient (the tutorial's solver)."""

    name = "cg"

    def __init__(
        self,
        features: int = 15,
        regularization: float = 0.1,
        max_iterations: int = 3000,
        seed: int = 0,
        reference: bool = False,
    ):
        super().__init__(features, regularization, max_iterations, seed)
        self.reference = reference

    def steps(self) -> int:
        return self.max_iterations

    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        n_users, n_movies, k = matrix.n_users, matrix.n_movies, self.features
        # The tutorial's start: seed 0, users first, then movies (legacy RandomState
        # reproduces np.random.seed + np.random.randn without touching global state).
        random = np.random.RandomState(self.seed)
        start = np.concatenate([random.randn(n_users, k).ravel(), random.randn(n_movies, k).ravel()])
        objective = (_dense_objective if self.reference else _sparse_objective)(matrix, k, self.regularization)
        result = minimize(
            objective,
            start,
            jac=True,
            method="CG",
            options={"maxiter": self.max_iterations, "gtol": 1e-5},
            callback=lambda _x: step(1),
        )
        x = result.x
        return Factors(
            user_ids=matrix.user_ids,
            movie_ids=matrix.movie_ids,
            user_factors=x[: n_users * k].reshape(n_users, k).copy(),
            movie_factors=x[n_users * k :].reshape(n_movies, k).copy(),
            info={
                "iterations": int(result.nit),
                "converged": bool(result.success),
                "message": str(result.message),
                "cost": float(result.fun),
            },
        )


def _sparse_objective(matrix: RatingMatrix, k: int, lam: float) -> Objective:
    """J and its gradient, touching only the known cells."""
    n_users = matrix.n_users
    rows, cols, ratings = matrix.rows, matrix.cols, matrix.values
    pattern = matrix.csr  # reused: only its data changes per evaluation

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        users = x[: n_users * k].reshape(n_users, -1)
        movies = x[n_users * k :].reshape(-1, k)
        errors = np.einsum("ij,ij->i", users[rows], movies[cols]) - ratings
        pattern.data = errors
        cost = 0.5 * errors @ errors + 0.5 * lam * (x @ x)
        grad_users = pattern @ movies + lam * users
        grad_movies = pattern.T @ users + lam * movies
        return cost, np.concatenate([grad_users.ravel(), grad_movies.ravel()])

    return objective


def _dense_objective(matrix: RatingMatrix, k: int, lam: float) -> Objective:
    """The tutorial's computation: dense users x movies arrays with a 0/1 mask."""
    n_users, n_movies = matrix.shape
    if n_users * n_movies > DENSE_LIMIT:
        raise InvalidParameter(
            f"the dense reference solver needs a {n_users} x {n_movies} array; use the sparse solver for data this size"
        )
    ratings = np.zeros(matrix.shape)
    ratings[matrix.rows, matrix.cols] = matrix.values
    mask = np.zeros(matrix.shape)
    mask[matrix.rows, matrix.cols] = 1.0

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        users = x[: n_users * k].reshape(n_users, k)
        movies = x[n_users * k :].reshape(n_movies, k)
        errors = mask * (users @ movies.T - ratings)
        cost = np.sum(errors**2) / 2 + lam / 2 * np.sum(movies**2) + lam / 2 * np.sum(users**2)
        grad_users = errors @ movies + lam * users
        grad_movies = errors.T @ users + lam * movies
        return cost, np.concatenate([grad_users.ravel(), grad_movies.ravel()])

    return objective

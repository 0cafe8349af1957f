"""Biased matrix factorization by alternating least squares, optionally Bayesian.

Model: rating(u, m) = mu + b_u + b_m + p_u . q_m, with mu the mean training rating.

Each half-step fixes one side and solves every user (or movie) at once in closed form:
for user u with rated movies N(u), the unknowns x_u = [p_u, b_u] solve

    (sum_{m in N(u)} q~_m q~_m^T + lambda |N(u)| I) x_u = sum_{m in N(u)} (r_um - mu - b_m) q~_m

with q~_m = [q_m, 1] ("weighted-lambda" regularization: each user's penalty grows with
its number of ratings).  All Gram matrices come from one sparse product,
``pattern @ (q~ (x) q~)``, and all systems are solved by one batched Cholesky; there is no
Python loop over users or ratings.

``samples > 0`` turns the same sweep into a Gibbs sampler for the Bayesian version of
the model (:mod:`recsql.model.solvers.bayes`): the prediction is the average over the
draws; because an average of products p.q is not a product of averages, the draws are
stacked and the averaged predictor, which has rank at most samples x features, is
compressed to ``stored_rank`` features.  That keeps predictions reproducible in SQL as
mu + b_u + b_m + sum of feature products.  The normal equations both share are in
:mod:`recsql.model.solvers.sweeps`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.model.factors import Factors
from recsql.model.solvers.base import Solver
from recsql.model.solvers.bayes import gibbs_average
from recsql.model.solvers.sweeps import Side, normal_equations
from recsql.progress import Step
from recsql.threads import thread_count

# Below this many ratings, threads cost more than they save.
PARALLEL_NNZ = 500_000


class AlternatingLeastSquares(Solver):
    """Biased MF by ALS (``samples=0``) or by Gibbs sampling over ALS sweeps (``samples>0``).

    ``reference=True`` runs the ALS sweeps one user/movie at a time (the readable
    version the batched one is tested against).
    """

    name = "als"

    def __init__(
        self,
        features: int = 6,
        regularization: float = 0.1,
        max_iterations: int = 10,
        seed: int = 0,
        samples: int = 120,
        burn_in: int = 10,
        stored_rank: int | None = None,
        implicit: bool = True,
        reference: bool = False,
    ):
        super().__init__(features, regularization, max_iterations, seed)
        if regularization <= 0:
            raise InvalidParameter("regularization must be positive for ALS")
        if samples < 0 or burn_in < 0:
            raise InvalidParameter("samples and burn_in must not be negative")
        self.samples = samples
        self.burn_in = burn_in
        self.stored_rank = stored_rank
        self.implicit = implicit
        self.reference = reference

    def params(self) -> dict[str, Any]:
        params = {**super().params(), "samples": self.samples}
        if self.samples:
            params.update(burn_in=self.burn_in, stored_rank=self._stored_rank(), implicit=self.implicit)
        return params

    def _stored_rank(self) -> int:
        return self.stored_rank or 4 * self.features

    # ------------------------------------------------------------------ fitting

    def steps(self) -> int:
        return self.max_iterations + (self.burn_in + self.samples if self.samples else 0)

    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        rng = np.random.default_rng(self.seed)

        mu = float(matrix.values.mean())
        clip = (float(matrix.values.min()), float(matrix.values.max()))
        user_matrix = matrix.with_values(matrix.values - mu)
        movie_matrix = user_matrix.T.tocsr()
        threads = thread_count() if matrix.nnz >= PARALLEL_NNZ else 1
        by_user, by_movie = Side(user_matrix, threads), Side(movie_matrix, threads)
        try:
            return self._fit_sides(matrix, by_user, by_movie, mu, clip, rng, step)
        finally:
            by_user.close()
            by_movie.close()

    def _fit_sides(
        self, matrix: RatingMatrix, by_user: Side, by_movie: Side, mu: float, clip: tuple[float, float],
        rng: np.random.Generator, step: Step,
    ) -> Factors:
        k = self.features
        # [factors..., bias]: the bias is one more coordinate whose partner is a constant 1.
        users = np.hstack([rng.normal(0, 0.1, (matrix.n_users, k)), np.zeros((matrix.n_users, 1))])
        movies = np.hstack([rng.normal(0, 0.1, (matrix.n_movies, k)), np.zeros((matrix.n_movies, 1))])
        counts_u = np.diff(by_user.indptr).astype(np.float64)
        counts_m = np.diff(by_movie.indptr).astype(np.float64)

        solve = _solve_side_reference if self.reference else _solve_side
        for _ in range(self.max_iterations):
            users = solve(by_user, movies, self.regularization * counts_u)
            movies = solve(by_movie, users, self.regularization * counts_m)
            step(1)
        if not self.samples:
            return Factors(
                user_ids=matrix.user_ids, movie_ids=matrix.movie_ids,
                user_factors=users[:, :k], movie_factors=movies[:, :k], global_mean=mu,
                user_bias=users[:, k], movie_bias=movies[:, k], clip=clip,
                info={"iterations": self.max_iterations},
            )
        averaged = gibbs_average(
            by_user, by_movie, users, movies, samples=self.samples, burn_in=self.burn_in,
            stored_rank=self._stored_rank(), implicit=self.implicit, rng=rng, step=step,
        )
        return Factors(
            user_ids=matrix.user_ids, movie_ids=matrix.movie_ids,
            user_factors=averaged["user_factors"], movie_factors=averaged["movie_factors"], global_mean=mu,
            user_bias=averaged["user_bias"], movie_bias=averaged["movie_bias"], clip=clip,
            info={"iterations": self.max_iterations, "samples": self.samples,
                  "noise_precision": averaged["noise_precision"]},
        )



def _solve_side(side: Side, other: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    gram, rhs, _ = normal_equations(side, other)
    d = gram.shape[1]
    gram += (np.maximum(penalty, 1e-9)[:, None, None]) * np.eye(d)
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def _solve_side_reference(side: Side, other: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """The same half-step one row at a time, written for reading, not speed (tests compare)."""
    ratings = sp.csr_matrix((side.data, side.indices, side.indptr), shape=side.shape)
    d = other.shape[1]
    result = np.zeros((ratings.shape[0], d))
    for row in range(ratings.shape[0]):
        cells = slice(ratings.indptr[row], ratings.indptr[row + 1])
        partners = other[ratings.indices[cells]]
        features = np.hstack([partners[:, :-1], np.ones((len(partners), 1))])
        targets = ratings.data[cells] - partners[:, -1]
        lhs = features.T @ features + max(penalty[row], 1e-9) * np.eye(d)
        result[row] = np.linalg.solve(lhs, features.T @ targets)
    return result



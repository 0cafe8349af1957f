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
the model (Salakhutdinov & Mnih's BPMF, with per-dimension Gaussian priors whose means
and precisions, and the noise precision, get conjugate hyperpriors, as in libFM's MCMC):
each user's conditional posterior is Gaussian with the precision matrix above (prior
precision in place of lambda |N(u)|) so one draw is the ALS solve plus correlated noise.
The prediction is the average over the draws; because an average of products p.q is not
a product of averages, the draws are stacked and the averaged predictor, which has rank
at most samples x features, is compressed exactly-then-truncated to ``stored_rank``
features by an SVD of two thin QR factors.  That keeps predictions reproducible in SQL
as mu + b_u + b_m + sum of feature products.
"""

from __future__ import annotations

from typing import Any

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from recsql.errors import InvalidParameter
from recsql.factorize.base import Factors, Solver
from recsql.matrix import RatingMatrix
from recsql.progress import Step


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
        threads = 2 if matrix.nnz >= PARALLEL_NNZ else 1
        by_user, by_movie = _Side(user_matrix, threads), _Side(movie_matrix, threads)
        try:
            return self._fit_sides(matrix, by_user, by_movie, mu, clip, rng, step)
        finally:
            by_user.close()
            by_movie.close()

    def _fit_sides(self, matrix, by_user, by_movie, mu, clip, rng, step: Step) -> Factors:
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
        return self._sample(matrix, by_user, by_movie, users, movies, mu, clip, rng, step)

    def _sample(self, matrix, by_user, by_movie, users, movies, mu, clip, rng, step: Step) -> Factors:
        k = self.features
        hyper_u, hyper_m = _Prior(k + 1), _Prior(k + 1)
        if self.implicit:
            hyper_u.link = _ImplicitLink(by_user.blocks, k + 1)
            hyper_m.link = _ImplicitLink(by_movie.blocks, k + 1)
        # Noise precision starts at 1 / (mean squared error of the ALS fit).
        alpha = matrix.nnz / max(_squared_error(*_normal_equations(by_user, movies), users), 1e-9)
        stacked_u, stacked_m = [], []
        bias_u = np.zeros(matrix.n_users)
        bias_m = np.zeros(matrix.n_movies)
        for draw in range(self.burn_in + self.samples):
            hyper_u.resample(users, rng)
            users, _ = _sample_side(by_user, movies, alpha, hyper_u, rng)
            hyper_m.resample(movies, rng)
            movies, sse = _sample_side(by_movie, users, alpha, hyper_m, rng)
            alpha = rng.gamma(1.0 + matrix.nnz / 2, 1.0 / (1.0 + sse / 2))
            step(1)
            if draw >= self.burn_in:
                stacked_u.append(users[:, :k])
                stacked_m.append(movies[:, :k])
                bias_u += users[:, k]
                bias_m += movies[:, k]
        user_f, movie_f = _compress(stacked_u, stacked_m, self._stored_rank(), rng)
        return Factors(
            user_ids=matrix.user_ids, movie_ids=matrix.movie_ids,
            user_factors=user_f, movie_factors=movie_f, global_mean=mu,
            user_bias=bias_u / self.samples, movie_bias=bias_m / self.samples, clip=clip,
            info={"iterations": self.max_iterations, "samples": self.samples, "noise_precision": float(alpha)},
        )


def _augmented(other: np.ndarray) -> np.ndarray:
    """The partner side as [factors, 1] in float32: the 1 multiplies this side's bias."""
    aug = other.astype(np.float32)
    aug[:, -1] = 1.0
    return aug


class _Side:
    """One orientation of the ratings (users x movies, or movies x users), built once per
    fit: the rating values (minus the mean) and the sparsity pattern, cut into row blocks
    of about equal size that threads multiply at once (scipy's sparse x dense product
    releases the GIL).  The big products run in float32: they are memory-bound, and
    the small per-row systems are solved in float64.
    """

    def __init__(self, ratings: sp.csr_matrix, threads: int = 2):
        self.shape = ratings.shape
        self.data = ratings.data
        self.indices = ratings.indices
        self.indptr = ratings.indptr
        nnz = len(ratings.data)
        cuts = np.searchsorted(ratings.indptr, np.linspace(0, nnz, threads + 1)[1:-1])
        self.bounds = [0, *sorted(set(int(c) for c in cuts)), ratings.shape[0]]
        self.blocks = []
        for start, stop in zip(self.bounds[:-1], self.bounds[1:]):
            lo, hi = ratings.indptr[start], ratings.indptr[stop]
            self.blocks.append(sp.csr_matrix(
                (np.ones(hi - lo, dtype=np.float32), ratings.indices[lo:hi], ratings.indptr[start : stop + 1] - lo),
                shape=(stop - start, ratings.shape[1]),
            ))
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(self.blocks)))

    def times(self, dense: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """(pattern, or the matrix with ``values`` in its cells) @ dense, block by block."""

        def one(block_number: int) -> np.ndarray:
            block = self.blocks[block_number]
            if values is not None:
                lo = self.indptr[self.bounds[block_number]]
                block = sp.csr_matrix((values[lo : lo + block.nnz], block.indices, block.indptr), shape=block.shape)
            return np.asarray(block @ dense)

        return np.vstack(list(self.pool.map(one, range(len(self.blocks)))))

    def close(self) -> None:
        self.pool.shutdown()


def _normal_equations(side: _Side, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-row Gram matrices sum q~ q~^T, right-hand sides sum t q~ (t: rating minus the
    mean and the partner's bias), and sum t^2, for all rows at once."""
    aug = _augmented(other)
    d = aug.shape[1]
    upper_i, upper_j = np.triu_indices(d)  # the Gram matrices are symmetric: half the work
    gram_upper = side.times(aug[:, upper_i] * aug[:, upper_j])
    gram = np.empty((side.shape[0], d, d))
    gram[:, upper_i, upper_j] = gram_upper
    gram[:, upper_j, upper_i] = gram_upper
    targets = side.data - other[side.indices, -1]
    rhs = side.times(aug, targets.astype(np.float32)).astype(np.float64)
    return gram, rhs, float(targets @ targets)


def _solve_side(side: _Side, other: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    gram, rhs, _ = _normal_equations(side, other)
    d = gram.shape[1]
    gram += (np.maximum(penalty, 1e-9)[:, None, None]) * np.eye(d)
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def _solve_side_reference(side: _Side, other: np.ndarray, penalty: np.ndarray) -> np.ndarray:
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


class _ImplicitLink:
    """Prior mean offset F W from *which* items a row rated (SVD++'s implicit feedback).

    F is the row-normalized 0/1 pattern (1/sqrt(|N(u)|) per rated item).  W gets a
    Gaussian prior with precision beta; given the row vectors, each column of W is
    Gaussian with precision lambda_f F^T F + beta I.  In the thin SVD F = U S V^T that
    precision is diagonal on span(V), and on the rest W never reaches F W: only the
    coordinates a = V^T W are drawn, the complement enters beta's update through its
    norm alone (a chi-square draw).  Per sweep that is two products with F V.
    """

    def __init__(self, pattern_blocks: list[sp.csr_matrix], d: int):
        ratings = sp.vstack(pattern_blocks, format="csr")
        counts = np.diff(ratings.indptr).astype(np.float64)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), np.diff(ratings.indptr))
        f = sp.csr_matrix((weights, ratings.indices, ratings.indptr), shape=ratings.shape)
        n_rows, n_cols = ratings.shape
        if n_cols <= n_rows:
            eigval, v = np.linalg.eigh((f.T @ f).toarray())
            fv = np.asarray(f @ v)
        else:  # F V = U S, from the eigenvectors U of the smaller F F^T
            eigval, u = np.linalg.eigh((f @ f.T).toarray())
            fv = u * np.sqrt(np.maximum(eigval, 0.0))
        keep = eigval > 1e-10 * max(float(eigval.max()), 1e-300)
        self.s2 = eigval[keep]
        # float32 halves the memory traffic of the two skinny products per sweep; a
        # sampler's prior mean does not need more digits.
        self.fv = np.ascontiguousarray(fv[:, keep], dtype=np.float32)  # n_rows x r
        self.free = n_cols - int(keep.sum())  # dimensions of W that no row sees
        self.n_cols = n_cols
        self.beta = 1.0
        self.offset = np.zeros((n_rows, d))

    def resample(self, target: np.ndarray, precision: np.ndarray, rng: np.random.Generator) -> None:
        proj = (self.fv.T @ target.astype(np.float32)).astype(np.float64)  # V^T F^T target, r x d
        denom = precision[None, :] * self.s2[:, None] + self.beta
        a = (precision[None, :] * proj + rng.normal(size=proj.shape) * np.sqrt(denom)) / denom
        self.offset = (self.fv @ a.astype(np.float32)).astype(np.float64)
        d = target.shape[1]
        norm2 = float((a**2).sum()) + rng.chisquare(self.free * d) / self.beta if self.free else float((a**2).sum())
        self.beta = rng.gamma(1.0 + self.n_cols * d / 2, 1.0 / (1.0 + norm2 / 2))


class _Prior:
    """Per-dimension Gaussian prior N(mean_f, 1/precision_f) with Normal-Gamma hyperprior."""

    def __init__(self, d: int):
        self.mean = np.zeros(d)
        self.precision = np.ones(d)
        self.link: _ImplicitLink | None = None

    def row_means(self, n: int) -> np.ndarray:
        if self.link is None:
            return np.broadcast_to(self.mean, (n, len(self.mean)))
        return self.mean + self.link.offset

    def resample(self, x: np.ndarray, rng: np.random.Generator, a0=1.0, b0=1.0, beta0=1.0) -> None:
        if self.link is not None:
            self.link.resample(x - self.mean, self.precision, rng)
            x = x - self.link.offset
        n = len(x)
        spread = ((x - self.mean) ** 2).sum(axis=0) + beta0 * self.mean**2
        self.precision = rng.gamma(a0 + (n + 1) / 2, 1.0 / (b0 + spread / 2))
        centre = x.sum(axis=0) / (n + beta0)
        self.mean = centre + rng.normal(size=x.shape[1]) / np.sqrt((n + beta0) * self.precision)


def _sample_side(ratings, other, alpha, prior: _Prior, rng) -> tuple[np.ndarray, float]:
    """One Gibbs draw of every row's [factors, bias], and the squared error it leaves."""
    gram, rhs, tt = _normal_equations(ratings, other)
    d = gram.shape[1]
    precision = alpha * gram + np.diag(prior.precision)
    linear = alpha * rhs + prior.precision * prior.row_means(len(rhs))
    chol = np.linalg.cholesky(precision)
    # Wanted: mean + L^-T z with mean = P^-1 linear and P = L L^T.  Since
    # P^-1 (linear + L z) = mean + L^-T L^-1 L z, one solve gives the draw.
    z = rng.normal(size=(len(gram), d, 1))
    draw = np.linalg.solve(precision, linear[:, :, None] + chol @ z)[:, :, 0]
    return draw, _squared_error(gram, rhs, tt, draw)


def _squared_error(gram: np.ndarray, rhs: np.ndarray, tt: float, x: np.ndarray) -> float:
    """sum over cells of (t - x.q~)^2 = sum t^2 - 2 x.rhs + x^T G x, without touching cells."""
    return float(tt - 2 * np.einsum("ij,ij->", x, rhs) + np.einsum("ij,ijk,ik->", x, gram, x))


def _compress(
    stacked_u: list[np.ndarray], stacked_m: list[np.ndarray], rank: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` factors of the averaged predictor P = (1/S) sum_s U_s M_s^T.

    A randomized SVD (range finder with one power iteration) that applies P through the
    draws, never forming it: cost O(S k (users + movies) rank).
    """
    s = len(stacked_u)
    n_users, n_movies = len(stacked_u[0]), len(stacked_m[0])
    rank = min(rank, n_users, n_movies, s * stacked_u[0].shape[1])
    width = min(rank + 16, n_users, n_movies)

    def times(x: np.ndarray) -> np.ndarray:  # P x
        return sum(u @ (m.T @ x) for u, m in zip(stacked_u, stacked_m)) / s

    def transposed_times(x: np.ndarray) -> np.ndarray:  # P^T x
        return sum(m @ (u.T @ x) for u, m in zip(stacked_u, stacked_m)) / s

    basis, _ = np.linalg.qr(times(rng.normal(size=(n_movies, width))))
    basis, _ = np.linalg.qr(times(transposed_times(basis)))
    small = transposed_times(basis).T  # width x n_movies = basis^T P
    left, sigma, right_t = np.linalg.svd(small, full_matrices=False)
    root = np.sqrt(sigma[:rank])
    return (basis @ left[:, :rank]) * root, right_t[:rank].T * root

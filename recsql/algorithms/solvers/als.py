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
the model (:mod:`recsql.algorithms.solvers.bayes`): the prediction is the average over the
draws; because an average of products p.q is not a product of averages, the draws are
stacked and the averaged predictor, which has rank at most samples x features, is
compressed to ``stored_rank`` features.  That keeps predictions reproducible in SQL as
mu + b_u + b_m + sum of feature products.  The normal equations both share are in
:mod:`recsql.algorithms.solvers.sweeps`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.factors import Factors
from recsql.algorithms.solvers.base import Solver
from recsql.algorithms.solvers.bayes import gibbs_average
from recsql.algorithms.solvers.sweeps import Side, by_row_blocks, normal_equations
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.progress import Step

# The default's size rule.  The sampler's cost is (burn-in + samples) sweeps over every
# rating; the draws are chosen so that it stays under DRAW_BUDGET rating-draws, which
# keeps the fit within a few seconds at every size: all 120 draws (after 10 burn-in) up
# to about 300,000 ratings, fewer above, with a shorter burn-in (a quarter of the
# draws: the sampler starts from the ALS fit, not from noise), and plain ALS where
# fewer than MIN_SAMPLES would be averaged.  Measured on synthetic ratings (10 % held
# out): at 5 M ratings 2 burn-in + 6 draws (fit 2.3 s) beat plain ALS with 10 features
# and 5 sweeps (1.2 s) by 0.014 RMSE (docs/benchmarks.md).
MAX_SAMPLES = 120
MAX_BURN_IN = 10
MIN_SAMPLES = 4
DRAW_BUDGET = 40_000_000
# A draw costs about this many ALS sweeps (the same products, plus noise and priors);
# used to turn a time budget into draws.
DRAW_SWEEPS = 1.4
# Features and sweeps when the caller leaves them open: the sampler's draws average to
# a richer model (stored at 4 x features), plain ALS needs more features of its own.
SAMPLER_FEATURES, SAMPLER_SWEEPS = 6, 10
PLAIN_FEATURES, PLAIN_SWEEPS = 10, 5
# The implicit priors keep the top IMPLICIT_RANK directions of who-rated-what (see
# bayes.ImplicitLink); their SVD costs about IMPLICIT_DRAWS draws, charged to the
# budget, and they are left out where what remains would not average MIN_SAMPLES.
IMPLICIT_RANK = 64
IMPLICIT_DRAWS = 8


@dataclass(frozen=True)
class SamplerPlan:
    """How many draws the sampler takes and with which priors, and why."""

    samples: int
    burn_in: int
    implicit: bool
    implicit_rank: int | None  # the implicit priors' SVD rank (None: no implicit priors)
    reason: str


def plan_sampler(
    n_users: int,
    n_movies: int,
    nnz: int,
    *,
    samples: int | None = None,
    burn_in: int | None = None,
    implicit: bool | None = None,
) -> SamplerPlan:
    """The default's choice for a matrix of this size (what the caller gave is kept).
    Deterministic: the same data always gets the same plan."""
    if samples is None:
        draws = DRAW_BUDGET // max(nnz, 1)
        if implicit is None:  # the priors' SVD is charged to the budget where it is chosen here
            implicit = bool(_affordable(draws - IMPLICIT_DRAWS, burn_in)[1])
            draws -= IMPLICIT_DRAWS if implicit else 0
        chosen_burn, samples = _affordable(draws, burn_in)
        reason = (
            f"{nnz:,} ratings: all {chosen_burn + samples} draws fit the budget of {DRAW_BUDGET:,} rating-draws"
            if samples == MAX_SAMPLES
            else f"{nnz:,} ratings: {chosen_burn + samples} draws fit the budget of {DRAW_BUDGET:,} rating-draws"
            if samples
            else f"{nnz:,} ratings: fewer than {MIN_SAMPLES} draws after burn-in fit the "
            f"budget of {DRAW_BUDGET:,} rating-draws"
        )
    else:
        chosen_burn = burn_in if burn_in is not None else MAX_BURN_IN
        reason = "samples as given"
    use_implicit = bool(samples) and implicit is not False
    return SamplerPlan(
        samples, chosen_burn if samples else 0, use_implicit, IMPLICIT_RANK if use_implicit else None, reason
    )


def _affordable(draws: int, burn_in: int | None) -> tuple[int, int]:
    """Burn-in and samples within ``draws`` (samples 0: fewer than MIN_SAMPLES fit)."""
    burn = burn_in if burn_in is not None else int(min(MAX_BURN_IN, max(2, draws // 4)))
    samples = min(MAX_SAMPLES, draws - burn)
    return burn, (int(samples) if samples >= MIN_SAMPLES else 0)


class AlternatingLeastSquares(Solver):
    """Biased MF by ALS (``samples=0``) or by Gibbs sampling over ALS sweeps (``samples>0``).

    Left as None, ``samples``, ``burn_in``, ``implicit``, ``features`` and
    ``max_iterations`` are chosen by the data's size (:func:`plan_sampler`): 120 draws
    of a 6-feature model on small data, fewer as the ratings grow, and from about 6.7
    million ratings plain ALS with 10 features and 5 sweeps (``samples=0`` given: plain
    ALS with 6 features and 10 sweeps unless those are given too).  ``time_budget`` (seconds)
    bounds the fit instead: after the ALS sweeps, as many draws as the rest of the
    budget allows, at most ``samples`` (or 120), none where fewer than 4 fit.
    ``reference=True`` runs the ALS sweeps one user/movie at a time (the readable
    version the batched one is tested against).
    """

    name = "als"

    def __init__(
        self,
        features: int | None = None,
        regularization: float = 0.1,
        max_iterations: int | None = None,
        seed: int = 0,
        samples: int | None = None,
        burn_in: int | None = None,
        stored_rank: int | None = None,
        implicit: bool | None = None,
        time_budget: float | None = None,
        reference: bool = False,
    ):
        super().__init__(
            SAMPLER_FEATURES if features is None else features,
            regularization,
            SAMPLER_SWEEPS if max_iterations is None else max_iterations,
            seed,
        )
        if regularization <= 0:
            raise InvalidParameter("regularization must be positive for ALS")
        if (samples is not None and samples < 0) or (burn_in is not None and burn_in < 0):
            raise InvalidParameter("samples and burn_in must not be negative")
        if time_budget is not None and not time_budget > 0:
            raise InvalidParameter(f"time_budget must be a positive number of seconds, not {time_budget!r}")
        self._given = {"features": features, "max_iterations": max_iterations}
        self.samples = samples
        self.burn_in = burn_in
        self.stored_rank = stored_rank
        self.implicit = implicit
        self.time_budget = time_budget
        self.reference = reference
        self._plan: SamplerPlan | None = None

    def plan(self, n_users: int, n_movies: int, nnz: int) -> str:
        """What :meth:`fit` will do on a matrix of this size, in a line; fixed from then
        on, so the stored parameters describe the fit."""
        plan = self._settle(n_users, n_movies, nnz)
        if not plan.samples:
            return f"plain ALS, {self.features} features, {self.max_iterations} sweeps ({plan.reason})"
        priors = f"implicit priors (rank {plan.implicit_rank})" if plan.implicit else "no implicit priors"
        return (
            f"Bayesian ALS, {self.features} features, {plan.samples} draws after {plan.burn_in} burn-in, "
            f"{priors} ({plan.reason})"
        )

    def _settle(self, n_users: int, n_movies: int, nnz: int) -> SamplerPlan:
        """Choose the draws (and, where the size chose plain ALS, its shape) once."""
        if self._plan is None:
            self._plan = self._sampler_plan(n_users, n_movies, nnz)
            if not self._plan.samples and self.samples is None:  # the size chose plain ALS: its own shape
                if self._given["features"] is None:
                    self.features = PLAIN_FEATURES
                if self._given["max_iterations"] is None:
                    self.max_iterations = PLAIN_SWEEPS
        return self._plan

    def _sampler_plan(self, n_users: int, n_movies: int, nnz: int) -> SamplerPlan:
        if self.time_budget is not None:  # at most this many draws; the clock decides in _fit_sides
            most = MAX_SAMPLES if self.samples is None else self.samples
            plan = plan_sampler(n_users, n_movies, nnz, samples=most, burn_in=self.burn_in, implicit=self.implicit)
            return replace(plan, reason=f"up to {most} draws within {self.time_budget:g} s")
        return plan_sampler(n_users, n_movies, nnz, samples=self.samples, burn_in=self.burn_in, implicit=self.implicit)

    def params(self) -> dict[str, Any]:
        plan = self._plan
        samples: int | str = plan.samples if plan else ("auto" if self.samples is None else self.samples)
        params: dict[str, Any] = {**super().params(), "samples": samples}
        if plan is None and self.samples is None:
            params.update(
                features="auto" if self._given["features"] is None else self.features,
                max_iterations="auto" if self._given["max_iterations"] is None else self.max_iterations,
            )
        if self.time_budget is not None:
            params["time_budget"] = self.time_budget
        if samples:
            implicit = plan.implicit if plan else self.implicit
            burn_in = plan.burn_in if plan else self.burn_in
            params.update(
                burn_in="auto" if burn_in is None else burn_in,
                stored_rank=self._stored_rank(),
                implicit="auto" if implicit is None else implicit,
            )
            if plan and plan.implicit_rank is not None:
                params["implicit_rank"] = plan.implicit_rank
        return params

    def _stored_rank(self) -> int:
        return self.stored_rank or 4 * self.features

    # ------------------------------------------------------------------ fitting

    def steps(self) -> int:
        plan = self._plan
        samples = plan.samples if plan else (MAX_SAMPLES if self.samples is None else self.samples)
        burn_in = plan.burn_in if plan else (MAX_BURN_IN if self.burn_in is None else self.burn_in)
        return self.max_iterations + (burn_in + samples if samples else 0)

    def _fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        rng = np.random.default_rng(self.seed)
        plan = self._settle(matrix.n_users, matrix.n_movies, matrix.nnz)

        mu = float(matrix.values.mean())
        clip = (float(matrix.values.min()), float(matrix.values.max()))
        user_matrix = matrix.with_values(matrix.values - mu)
        movie_matrix = user_matrix.T.tocsr()
        return self._fit_sides(matrix, Side(user_matrix), Side(movie_matrix), mu, clip, plan, rng, step)

    def _fit_sides(
        self,
        matrix: RatingMatrix,
        by_user: Side,
        by_movie: Side,
        mu: float,
        clip: tuple[float, float],
        plan: SamplerPlan,
        rng: np.random.Generator,
        step: Step,
    ) -> Factors:
        started = time.monotonic()
        k = self.features
        # [factors..., bias]: the bias is one more coordinate whose partner is a constant 1.
        users = np.hstack([rng.normal(0, 0.1, (matrix.n_users, k)), np.zeros((matrix.n_users, 1))])
        movies = np.hstack([rng.normal(0, 0.1, (matrix.n_movies, k)), np.zeros((matrix.n_movies, 1))])
        counts_u = np.diff(by_user.indptr).astype(np.float64)
        counts_m = np.diff(by_movie.indptr).astype(np.float64)

        solve = _solve_side_reference if self.reference else _solve_side
        curve = TrainingCurve.of(matrix, mu, clip)
        for _ in range(self.max_iterations):
            users = solve(by_user, movies, self.regularization * counts_u)
            movies = solve(by_movie, users, self.regularization * counts_m)
            curve.after_sweep(users, movies)
            step(1)
        samples, deadline = self._affordable(plan, started)
        if not samples:
            info = {"iterations": self.max_iterations, "samples": 0, "sweep_train_rmse": curve.rmse}
            return _as_factors(matrix, users, movies, mu, clip, info=info)
        averaged = gibbs_average(
            by_user, by_movie, users, movies, samples=samples, burn_in=plan.burn_in, stored_rank=self._stored_rank(),
            implicit=plan.implicit, rng=rng, step=step, implicit_rank=plan.implicit_rank, deadline=deadline,
        )  # fmt: skip
        return Factors(
            user_ids=matrix.user_ids,
            movie_ids=matrix.movie_ids,
            user_factors=averaged["user_factors"],
            movie_factors=averaged["movie_factors"],
            global_mean=mu,
            user_bias=averaged["user_bias"],
            movie_bias=averaged["movie_bias"],
            clip=clip,
            info={
                "iterations": self.max_iterations,
                "samples": averaged["samples"],
                "noise_precision": averaged["noise_precision"],
                "sweep_train_rmse": curve.rmse,
            },
        )

    def _affordable(self, plan: SamplerPlan, started: float) -> tuple[int, float | None]:
        """The draws the time budget leaves after the sweeps (the plan's, without a
        budget), and the deadline they must end by."""
        if self.time_budget is None or not plan.samples:
            return plan.samples, None
        spent = time.monotonic() - started
        per_draw = DRAW_SWEEPS * spent / self.max_iterations
        affordable = int((self.time_budget - spent) / max(per_draw, 1e-9)) - plan.burn_in
        return (min(plan.samples, affordable) if affordable >= MIN_SAMPLES else 0), started + self.time_budget


CURVE_SAMPLE = 100_000  # ratings scored after each sweep (about 5 ms at 10 features)


@dataclass
class TrainingCurve:
    """Train RMSE after each ALS sweep, on a fixed sample of the ratings (drawn by its
    own generator, so the fit's random numbers are the same with or without it): the
    report's training curve (:mod:`recsql.report`)."""

    matrix: RatingMatrix
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    mu: float
    clip: tuple[float, float]
    rmse: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, matrix: RatingMatrix, mu: float, clip: tuple[float, float]) -> TrainingCurve:
        cells = np.random.default_rng(0).integers(0, max(matrix.nnz, 1), min(matrix.nnz, CURVE_SAMPLE))
        return cls(matrix, matrix.rows[cells], matrix.cols[cells], matrix.values[cells], mu, clip)

    def after_sweep(self, users: np.ndarray, movies: np.ndarray) -> None:
        """Score the sample with the [factors..., bias] rows of both sides."""
        predicted = _as_factors(self.matrix, users, movies, self.mu, self.clip).predict(self.rows, self.cols)
        self.rmse.append(round(float(np.sqrt(np.mean((predicted - self.values) ** 2))), 6))


def _as_factors(
    matrix: RatingMatrix,
    users: np.ndarray,
    movies: np.ndarray,
    mu: float,
    clip: tuple[float, float],
    info: dict[str, Any] | None = None,
) -> Factors:
    """The ``[factors..., bias]`` rows of both sides as Factors (whose formula predicts)."""
    k = users.shape[1] - 1
    return Factors(
        user_ids=matrix.user_ids,
        movie_ids=matrix.movie_ids,
        user_factors=users[:, :k],
        movie_factors=movies[:, :k],
        global_mean=mu,
        user_bias=users[:, k],
        movie_bias=movies[:, k],
        clip=clip,
        info=info or {},
    )


def _solve_side(side: Side, other: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    gram, rhs, _ = normal_equations(side, other)
    d = gram.shape[1]
    result = np.empty_like(rhs)

    def solve(start: int, stop: int) -> None:
        block = gram[start:stop]
        block += (np.maximum(penalty[start:stop], 1e-9)[:, None, None]) * np.eye(d)
        result[start:stop] = np.linalg.solve(block, rhs[start:stop, :, None])[:, :, 0]

    by_row_blocks(len(rhs), solve)
    return result


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

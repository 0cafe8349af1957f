"""Solvers: the sparse CG against the tutorial's dense reference, and the Factors contract."""

from __future__ import annotations

import numpy as np
import pytest

from recsql.algorithms.factors import Factors
from recsql.algorithms.solvers import SOLVERS, ConjugateGradient, make_solver
from recsql.errors import InvalidParameter, ModelFitError
from tests.helpers import low_rank_ratings


def test_sparse_matches_dense_reference():
    matrix = low_rank_ratings()
    sparse = ConjugateGradient(features=4, regularization=0.5).fit(matrix)
    dense = ConjugateGradient(features=4, regularization=0.5, reference=True).fit(matrix)
    np.testing.assert_allclose(sparse.user_factors, dense.user_factors, atol=1e-4)
    np.testing.assert_allclose(sparse.movie_factors, dense.movie_factors, atol=1e-4)


def test_tutorial_start_is_reproduced(monkeypatch):
    """The optimizer starts exactly where the tutorial's does: np.random.seed(0), then
    randn(users, k), then randn(movies, k), users first."""
    from recsql.algorithms.solvers import cg

    matrix = low_rank_ratings()
    starts = []

    def recording(fun, x0, **options):
        starts.append(x0.copy())
        return real_minimize(fun, x0, **options)

    real_minimize = cg.minimize
    monkeypatch.setattr(cg, "minimize", recording)
    ConjugateGradient(features=2, max_iterations=1).fit(matrix)
    np.random.seed(0)
    tutorial = np.concatenate([np.random.randn(matrix.n_users, 2).ravel(), np.random.randn(matrix.n_movies, 2).ravel()])
    np.testing.assert_array_equal(starts[0], tutorial)
    ConjugateGradient(features=2, max_iterations=1, seed=1).fit(matrix)
    assert not np.allclose(starts[1], tutorial)  # the seed is used, not ignored


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_fits_a_low_rank_matrix(name):
    matrix = low_rank_ratings(density=0.8)
    factors = make_solver(name, features=3, regularization=0.01).fit(matrix)
    assert factors.user_factors.shape[0] == matrix.n_users
    assert factors.movie_factors.shape[0] == matrix.n_movies
    assert factors.user_factors.shape[1] == factors.movie_factors.shape[1] >= 3
    assert np.array_equal(factors.user_ids, matrix.user_ids)
    errors = factors.predict(matrix.rows, matrix.cols) - matrix.values
    assert np.sqrt(np.mean(errors**2)) < 0.05


def test_non_finite_factors_raise():
    factors = Factors(np.arange(2), np.arange(2), np.array([[np.nan], [1.0]]), np.ones((2, 1)))
    with pytest.raises(ModelFitError, match="non-finite user factors"):
        factors.check_finite()


def test_diverging_fit_raises(monkeypatch):
    from scipy.optimize import OptimizeResult

    from recsql.algorithms.solvers import cg

    def diverged(fun, x0, **_):
        return OptimizeResult(x=np.full_like(x0, np.nan), nit=1, success=False, message="", fun=np.nan)

    monkeypatch.setattr(cg, "minimize", diverged)
    with pytest.raises(ModelFitError):
        ConjugateGradient(features=2).fit(low_rank_ratings())


def test_bad_parameters():
    with pytest.raises(InvalidParameter):
        ConjugateGradient(features=0)
    with pytest.raises(InvalidParameter):
        make_solver("svd")

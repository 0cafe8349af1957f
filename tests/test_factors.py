"""Retrieval from Factors (similar movies, recommendations, predictions) against
brute-force computations, and the top-K selection kernel against a full sort."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsql.algorithms import topk
from recsql.algorithms.factors import Factors
from recsql.algorithms.topk import top_k_largest


def movies_only(movie_factors: np.ndarray) -> Factors:
    n = len(movie_factors)
    return Factors(np.empty(0), np.arange(n), np.empty((0, movie_factors.shape[1])), movie_factors)


def brute_force(factors, k, metric):
    n = len(factors)
    result = []
    for i in range(n):
        if metric == "l1":
            cost = np.abs(factors - factors[i]).sum(axis=1)
        else:
            unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
            cost = -(unit @ unit[i])
        cost[i] = np.inf
        order = sorted(range(n), key=lambda j: (cost[j], j))[:k]
        result.append(order)
    return np.array(result)


@pytest.mark.parametrize("metric", ["l1", "cosine"])
@pytest.mark.parametrize("block_cells", [10_000_000, 37])  # one block, and many ragged ones
def test_matches_brute_force(monkeypatch, metric, block_cells):
    monkeypatch.setattr(topk, "BLOCK_CELLS", block_cells)
    factors = np.random.default_rng(3).normal(size=(53, 4))
    indices, scores = movies_only(factors).similar_movies(k=7, metric=metric)
    assert np.array_equal(indices, brute_force(factors, 7, metric))
    assert (indices != np.arange(53)[:, None]).all()
    if metric == "l1":
        expected = np.abs(factors[:, None, :] - factors[indices]).sum(axis=2)
        assert np.allclose(scores, expected) and (np.diff(scores, axis=1) >= 0).all()
    else:
        assert (np.diff(scores, axis=1) <= 0).all() and (scores <= 1 + 1e-12).all()


def test_k_larger_than_catalogue():
    indices, scores = movies_only(np.eye(3)).similar_movies(k=20)
    assert indices.shape == (3, 2) and scores.shape == (3, 2)


@pytest.mark.parametrize("n,k", [(5000, 10), (3001, 20), (700, 7)])
def test_top_k_largest_matches_a_full_sort(n, k):
    rng = np.random.default_rng(n)
    scores = rng.normal(size=(40, n)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # excluded cells
    index, value = top_k_largest(scores, k)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert np.array_equal(index, expected)
    assert np.array_equal(value, np.take_along_axis(scores, expected, axis=1))


def random_model(n_users=30, n_movies=3000, seed=5) -> Factors:
    rng = np.random.default_rng(seed)
    return Factors(
        np.arange(n_users),
        np.arange(n_movies),
        rng.normal(size=(n_users, 4)),
        rng.normal(size=(n_movies, 4)),
        global_mean=3.0,
        user_bias=rng.normal(size=n_users),
        movie_bias=rng.normal(size=n_movies),
        clip=(1.0, 5.0),
    )


def brute_force_predictions(factors: Factors) -> np.ndarray:
    """Every user x movie prediction, written out term by term (before clipping)."""
    return (
        factors.user_factors @ factors.movie_factors.T
        + factors.global_mean
        + factors.user_bias[:, None]
        + factors.movie_bias[None, :]
    )


def test_predict_is_the_biased_dot_product_clipped():
    factors = random_model(n_users=7, n_movies=11)
    rows, cols = np.meshgrid(np.arange(7), np.arange(11), indexing="ij")
    expected = np.clip(brute_force_predictions(factors), 1, 5)
    np.testing.assert_allclose(factors.predict(rows.ravel(), cols.ravel()), expected.ravel(), atol=1e-12)


@pytest.mark.parametrize("exact", [False, True])
def test_recommend_excludes_rated_and_matches_brute_force(exact):
    factors = random_model()
    n_users, n_movies = 30, 3000
    rated = sp.random(n_users, n_movies, density=0.2, format="lil", random_state=1)
    rated[3, :] = 1.0  # user 3 has rated everything: nothing left to recommend
    rated = sp.csr_matrix(rated)
    index, score = factors.recommend(rated, limit=10, exact=exact)
    pred = brute_force_predictions(factors)
    pred[rated.toarray() != 0] = -np.inf
    for u in range(n_users):
        if u == 3:
            assert (index[u] == -1).all() and np.isnan(score[u]).all()
            continue
        expected = np.argsort(-pred[u], kind="stable")[:10]
        assert np.array_equal(index[u], expected)
        assert np.allclose(score[u], np.clip(pred[u, expected], 1, 5), atol=1e-12 if exact else 1e-4)

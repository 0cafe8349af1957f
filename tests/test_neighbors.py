"""Top-K similar movies against a brute-force computation."""

import numpy as np
import pytest

from recsql import neighbors
from recsql.neighbors import top_k_similar


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
    monkeypatch.setattr(neighbors, "BLOCK_CELLS", block_cells)
    factors = np.random.default_rng(3).normal(size=(53, 4))
    indices, scores = top_k_similar(factors, k=7, metric=metric)
    assert np.array_equal(indices, brute_force(factors, 7, metric))
    assert (indices != np.arange(53)[:, None]).all()
    if metric == "l1":
        expected = np.abs(factors[:, None, :] - factors[indices]).sum(axis=2)
        assert np.allclose(scores, expected) and (np.diff(scores, axis=1) >= 0).all()
    else:
        assert (np.diff(scores, axis=1) <= 0).all() and (scores <= 1 + 1e-12).all()


def test_k_larger_than_catalogue():
    indices, scores = top_k_similar(np.eye(3), k=20)
    assert indices.shape == (3, 2) and scores.shape == (3, 2)


@pytest.mark.parametrize("n,k", [(5000, 10), (3001, 20), (700, 7)])
def test_top_k_largest_matches_a_full_sort(n, k):
    from recsql.neighbors import top_k_largest

    rng = np.random.default_rng(n)
    scores = rng.normal(size=(40, n)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # excluded cells
    index, value = top_k_largest(scores, k)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert np.array_equal(index, expected)
    assert np.array_equal(value, np.take_along_axis(scores, expected, axis=1))


def test_top_n_unrated_excludes_rated_and_matches_brute_force():
    import scipy.sparse as sp

    from recsql.factorize import Factors
    from recsql.neighbors import top_n_unrated

    rng = np.random.default_rng(5)
    n_users, n_movies = 30, 3000
    factors = Factors(
        np.arange(n_users), np.arange(n_movies), rng.normal(size=(n_users, 4)), rng.normal(size=(n_movies, 4)),
        global_mean=3.0, user_bias=rng.normal(size=n_users), movie_bias=rng.normal(size=n_movies), clip=(1.0, 5.0),
    )
    rated = sp.random(n_users, n_movies, density=0.2, format="lil", random_state=1)
    rated[3, :] = 1.0  # user 3 has rated everything: nothing left to recommend
    rated = sp.csr_matrix(rated)
    index, score = top_n_unrated(factors, rated, n=10)
    pred = factors.user_factors @ factors.movie_factors.T + 3.0 + factors.user_bias[:, None] + factors.movie_bias
    pred[rated.toarray() != 0] = -np.inf
    for u in range(n_users):
        if u == 3:
            assert (index[u] == -1).all() and np.isnan(score[u]).all()
            continue
        expected = np.argsort(-pred[u], kind="stable")[:10]
        assert np.array_equal(index[u], expected)
        assert np.allclose(score[u], np.clip(pred[u, expected], 1, 5), atol=1e-4)

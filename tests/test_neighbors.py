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

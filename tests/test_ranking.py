"""The item-item pick model: exact EASE against its definition, the low-rank form against
the exact one, and the blend that orders the stored lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import recsql
from recsql.algorithms import ranking
from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import recommendation_lists, similar_lists
from recsql.algorithms.ranking import ExactItemItem, FactorChoice, LowRankItemItem, rated_by
from recsql.data.matrix import RatingMatrix


def random_pattern(n_users: int, n_movies: int, density: float = 0.3, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_movies)) < density).astype(np.float32))


def test_exact_weights_minimize_the_ease_objective():
    """B = argmin ||X - XB||^2 + lambda ||B||^2 with diag(B) = 0, checked column by column
    by solving each column's own least-squares problem without movie j."""
    x = random_pattern(40, 12)
    lam = 3.0
    model = ExactItemItem.fit(x, lam)
    dense = x.toarray().astype(np.float64)
    for j in range(12):
        others = [i for i in range(12) if i != j]
        a = dense[:, others]
        column = np.linalg.solve(a.T @ a + lam * np.eye(11), a.T @ dense[:, j])
        np.testing.assert_allclose(model.weights[others, j], column, atol=1e-4)
        assert model.weights[j, j] == 0


def test_low_rank_is_exact_when_the_ratings_have_low_rank():
    """With fewer users than the rank kept, X^T X has no eigenvalue the low-rank form
    drops, so both forms give the same weights and scores."""
    x = random_pattern(10, 30, seed=2)
    exact = ExactItemItem.fit(x, 2.0)
    low = LowRankItemItem.fit(x, 2.0, rank=16)
    weights = low.weight_rows(0, 30)
    np.fill_diagonal(weights, 0.0)
    np.testing.assert_allclose(weights, exact.weights, atol=2e-3)
    users = random_pattern(5, 30, seed=3)
    unrated = users.toarray() == 0
    rows = np.arange(5)
    np.testing.assert_allclose(
        low.choice_scores(rows, users)[unrated], exact.choice_scores(rows, users)[unrated], atol=2e-3
    )


def test_rated_by_counts_every_known_cell():
    matrix = RatingMatrix.from_triples([1, 1, 2], [1, 2, 1], [0.0, 5.0, 3.0])  # a 0 rating is still known
    assert rated_by(matrix.csr).toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_low_rank_lists_rank_on_movielens_100k(ml100k, monkeypatch):
    """The low-rank form (what catalogues above 3,000 movies get), forced on u1."""
    monkeypatch.setattr(ranking, "ITEM_MODEL_LIMIT", 0)
    metrics = recsql.evaluate(train_file=ml100k / "u1.base", test_file=ml100k / "u1.test").mean
    assert metrics["ndcg_at_10"] >= 0.35 and metrics["similar_ndcg_at_10"] >= 0.35, metrics


def test_stored_recommendations_are_the_blend_brute_forced():
    """The training lists against a plain computation: EASE's pick score of every unrated
    movie (X B), times exp(0.5 * (clipped predicted rating - mean)), best 4 per user."""
    rng = np.random.default_rng(7)
    n_users, n_movies = 15, 25
    pattern = random_pattern(n_users, n_movies, density=0.4, seed=5)
    ratings = sp.csr_matrix(
        (rng.integers(1, 6, pattern.nnz).astype(float), pattern.indices, pattern.indptr), shape=pattern.shape
    )
    factors = _random_factors(rng, n_users, n_movies)
    items = ExactItemItem.fit(rated_by(ratings), 2.0)
    got = recommendation_lists(factors, items, ratings, 4)

    x = pattern.toarray().astype(np.float64)
    gram = x.T @ x + 2.0 * np.eye(n_movies)
    weights = np.zeros((n_movies, n_movies))
    for j in range(n_movies):  # each column's own ridge regression, without movie j
        others = [i for i in range(n_movies) if i != j]
        weights[others, j] = np.linalg.solve(gram[np.ix_(others, others)], gram[others, j])
    predicted = np.clip(
        factors.user_factors @ factors.movie_factors.T + 3.2 + factors.user_bias[:, None] + factors.movie_bias[None, :],
        1,
        5,
    )
    score = (x @ weights) * np.exp(0.5 * (predicted - 3.2))
    score[x > 0] = -np.inf
    for u in range(n_users):
        expected = np.argsort(-score[u], kind="stable")[:4]
        assert got.indices[u].tolist() == expected.tolist()
        np.testing.assert_allclose(got.scores[u], score[u, expected], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.predicted[u], predicted[u, expected], atol=1e-12)


def _random_factors(rng: np.random.Generator, n_users: int, n_movies: int) -> Factors:
    return Factors(
        np.arange(n_users),
        np.arange(n_movies),
        rng.normal(size=(n_users, 3)),
        rng.normal(size=(n_movies, 3)),
        global_mean=3.2,
        user_bias=rng.normal(size=n_users),
        movie_bias=rng.normal(size=n_movies),
        clip=(1.0, 5.0),
    )


def test_factor_choice_lists_brute_forced():
    """The Spark backend's choice model: similar movies by v_i . v_j (no bias lift), and
    recommendations by u . v_j times exp(0.5 * (predicted - mean)), rated movies left out."""
    rng = np.random.default_rng(11)
    n_users, n_movies = 12, 18  # fewer movies than the candidates kept: every movie is re-ranked
    factors = _random_factors(rng, n_users, n_movies)
    items = FactorChoice(
        rng.normal(size=(n_users, 4)).astype(np.float32), rng.normal(size=(n_movies, 4)).astype(np.float32)
    )
    similar = similar_lists(factors, items, 5, "items")
    weights = items.movie_vectors.astype(np.float64) @ items.movie_vectors.T.astype(np.float64)
    np.fill_diagonal(weights, -np.inf)
    for m in range(n_movies):
        assert similar.indices[m].tolist() == np.argsort(-weights[m], kind="stable")[:5].tolist()
    pattern = random_pattern(n_users, n_movies, density=0.3, seed=4)
    got = recommendation_lists(factors, items, pattern, 4)
    predicted = np.clip(factors.user_terms @ factors.movie_terms.T, 1, 5)
    score = (items.user_vectors.astype(np.float64) @ items.movie_vectors.T) * np.exp(0.5 * (predicted - 3.2))
    score[pattern.toarray() > 0] = -np.inf
    for u in range(n_users):
        expected = np.argsort(-score[u], kind="stable")[:4]
        assert got.indices[u].tolist() == expected.tolist()
        np.testing.assert_allclose(got.scores[u], score[u, expected], rtol=1e-4)


def test_similar_lists_of_some_movies_are_those_rows_of_all():
    """``rows`` (one block of the Spark backend's lists) lists those movies against all."""
    rng = np.random.default_rng(5)
    factors = _random_factors(rng, 10, 40)
    pattern = random_pattern(10, 40, seed=6)
    for metric, items in (("items", ExactItemItem.fit(pattern, 2.0)), ("cosine", None), ("l1", None)):
        full = similar_lists(factors, items, 6, metric)
        part = similar_lists(factors, items, 6, metric, rows=range(13, 29))
        np.testing.assert_array_equal(part.indices, full.indices[13:29])
        np.testing.assert_allclose(part.scores, full.scores[13:29])

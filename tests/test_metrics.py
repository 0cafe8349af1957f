"""Ranking metrics against independent brute-force implementations on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import recommendation_lists
from recsql.algorithms.topk import TopK
from recsql.data.matrix import RatingMatrix
from recsql.evaluation.beyond import beyond_accuracy, coverage, gini
from recsql.evaluation.metrics import HeldOut, accuracy_metrics, because_you_rated, list_metrics, top_k_quality


def test_top_k_quality_by_hand():
    top = np.array([[2, 0, 5], [1, -1, -1]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0]], dtype=float))
    quality = top_k_quality(top, relevant, k=3)
    dcg, ideal = 1 / math.log2(3) + 1 / math.log2(4), 1 + 1 / math.log2(3)
    assert quality["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert quality["recall_at_3"] == pytest.approx((1 + 0) / 2)
    assert quality["ndcg_at_3"] == pytest.approx((dcg / ideal + 0) / 2)


def small_case(seed=0, n_users=12, n_movies=30):
    rng = np.random.default_rng(seed)
    cells = [(u, m) for u in range(n_users) for m in range(n_movies) if rng.random() < 0.35]
    rng.shuffle(cells)
    values = rng.integers(1, 6, len(cells)).astype(float)
    cut = int(0.7 * len(cells))
    users = np.array([u for u, _ in cells]) + 1
    movies = np.array([m for _, m in cells]) + 101
    train = RatingMatrix.from_triples(users[:cut], movies[:cut], values[:cut])
    test = RatingMatrix.from_triples(users[cut:], movies[cut:], values[cut:])
    factors = Factors(
        train.user_ids,
        train.movie_ids,
        rng.normal(size=(train.n_users, 3)),
        rng.normal(size=(train.n_movies, 3)),
        global_mean=3.0,
        user_bias=rng.normal(size=train.n_users),
        movie_bias=rng.normal(size=train.n_movies),
    )
    return train, test, factors


def brute_relevance(train, test, factors):
    """{user id: (set of training movie ids, set of relevant test movie ids)}, plain Python."""
    known_movies = set(factors.movie_ids.tolist())
    known_users = set(factors.user_ids.tolist())
    rated: dict[int, set[int]] = {}
    for u, m, _ in zip(*train.triples()):
        rated.setdefault(int(u), set()).add(int(m))
    relevant: dict[int, set[int]] = {}
    for u, m, v in zip(*test.triples()):
        if v >= 4 and int(m) in known_movies and int(u) in known_users:
            relevant.setdefault(int(u), set()).add(int(m))
    return {u: (rated.get(u, set()), rel) for u, rel in relevant.items()}


def brute_quality(lists, relevant_sets, k=10):
    p, r, n = [], [], []
    for user, ranked in lists.items():
        rel = relevant_sets[user]
        hits = [1.0 if m in rel else 0.0 for m in ranked[:k]]
        p.append(sum(hits) / k)
        r.append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
        n.append(dcg / idcg)
    return np.mean(p), np.mean(r), np.mean(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_matches_brute_force(seed):
    train, test, factors = small_case(seed)
    cases = brute_relevance(train, test, factors)
    lists = {}
    for user, (rated, _) in cases.items():
        row = int(np.searchsorted(factors.user_ids, user))
        scored = []
        for col, movie in enumerate(factors.movie_ids.tolist()):
            if movie in rated:
                continue
            prediction = (
                factors.global_mean
                + factors.user_bias[row]
                + factors.movie_bias[col]
                + sum(factors.user_factors[row, f] * factors.movie_factors[col, f] for f in range(3))
            )
            scored.append((-prediction, col, movie))
        lists[user] = [movie for _, _, movie in sorted(scored)]
    p, r, n = brute_quality(lists, {u: rel for u, (_, rel) in cases.items()})
    stored = recommendation_lists(factors, None, train.csr, 10)  # ranked by predicted rating
    ours = list_metrics(factors, train, test, factors.similar_movies(3), stored.indices)
    assert ours["ranked_users"] == len(cases)
    assert ours["precision_at_10"] == pytest.approx(p, abs=1e-12)
    assert ours["recall_at_10"] == pytest.approx(r, abs=1e-12)
    assert ours["ndcg_at_10"] == pytest.approx(n, abs=1e-12)


@pytest.mark.parametrize("larger_is_similar", [True, False])
def test_because_you_rated_matches_brute_force(larger_is_similar):
    train, test, factors = small_case(4)
    similar = factors.similar_movies(5, "cosine" if larger_is_similar else "l1")
    cases = brute_relevance(train, test, factors)
    ids = factors.movie_ids.tolist()
    lists = {}
    for user, (rated, _) in cases.items():
        score: dict[int, float] = {}
        for x in rated:
            row = ids.index(x)
            for col, value in zip(similar.indices[row], similar.scores[row]):
                lent = value if larger_is_similar else 1 / (1 + value)
                score[ids[col]] = score.get(ids[col], 0.0) + lent
        ranked = sorted((m for m in score if m not in rated), key=lambda m: (-score[m], ids.index(m)))
        lists[user] = ranked
    _, _, n = brute_quality(lists, {u: rel for u, (_, rel) in cases.items()})
    held = HeldOut.of(factors.user_ids, factors.movie_ids, train, test)
    assert because_you_rated(similar, held, larger_is_similar=larger_is_similar) == pytest.approx(n, abs=1e-6)


def test_because_you_rated_ranks_what_the_lists_say():
    """Two movies, each the other's only neighbour: whoever rated one is shown the other."""
    train = RatingMatrix.from_triples([1, 2], [10, 20], [5, 5])
    test = RatingMatrix.from_triples([1, 2], [20, 10], [5, 2])
    held = HeldOut.of(np.array([1, 2]), np.array([10, 20]), train, test)
    lists = TopK(np.array([[1], [0]]), np.array([[0.9], [0.9]]))
    assert because_you_rated(lists, held) == pytest.approx(1.0)  # user 2's 2 is not relevant
    wrong = TopK(np.array([[0], [1]]), np.array([[0.9], [0.9]]))  # each movie its own neighbour
    assert because_you_rated(wrong, held) == pytest.approx(0.0)


def test_coverage_by_hand():
    assert coverage(np.array([[0, 3, -1], [3, 4, -1]]), 10) == pytest.approx(3 / 10)
    assert coverage(np.full((2, 2), -1), 5) == 0.0


# ------------------------------------------------- against an independent implementation


@pytest.mark.parametrize("seed", [0, 3])
def test_ranking_and_accuracy_agree_with_scikit_learn(seed):
    """RMSE, MAE and NDCG@10 as scikit-learn computes them: predictions written out by
    hand, and each test user's stored list scored by ``ndcg_score`` over the movies the
    user did not rate in training."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

    train, test, factors = small_case(seed, n_users=20, n_movies=40)
    stored = recommendation_lists(factors, None, train.csr, 10)
    ours = {
        **accuracy_metrics(factors, train, test),
        **list_metrics(factors, train, test, factors.similar_movies(3), stored.indices),
    }
    users, movies, values = test.triples()
    rows = np.searchsorted(factors.user_ids, users)
    cols = np.searchsorted(factors.movie_ids, movies)
    known = np.isin(users, factors.user_ids) & np.isin(movies, factors.movie_ids)
    assert factors.clip is None  # predictions are the plain sum
    predicted = [
        factors.global_mean
        + factors.user_bias[r]
        + factors.movie_bias[c]
        + factors.user_factors[r] @ factors.movie_factors[c]
        for r, c in zip(rows[known], cols[known])
    ]
    assert ours["test_rmse"] == pytest.approx(math.sqrt(mean_squared_error(values[known], predicted)), rel=1e-9)
    assert ours["test_mae"] == pytest.approx(mean_absolute_error(values[known], predicted), rel=1e-9)
    scores = []
    for user, (rated, relevant) in brute_relevance(train, test, factors).items():
        row = int(np.searchsorted(factors.user_ids, user))
        candidates = [m for m in factors.movie_ids.tolist() if m not in rated]
        listed = factors.movie_ids[stored.indices[row][stored.indices[row] >= 0]].tolist()
        y_score = [len(listed) - listed.index(m) if m in listed else -1 - i / 1e3 for i, m in enumerate(candidates)]
        y_true = [1.0 if m in relevant else 0.0 for m in candidates]
        scores.append(ndcg_score([y_true], [y_score], k=10))
    assert ours["ndcg_at_10"] == pytest.approx(float(np.mean(scores)), rel=1e-9)


def test_beyond_accuracy_by_hand():
    recommended = np.array([[0, 1, -1], [1, 2, -1], [1, -1, -1]])
    ratings_per_movie = np.array([4, 2, 1, 1])  # 4 users; movie 3 is never recommended
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 4.0]])
    metrics = beyond_accuracy(recommended, ratings_per_movie, 4, vectors)
    assert metrics["coverage"] == pytest.approx(3 / 4)
    # slots show movies 0, 1, 1, 2, 1: mean popularity (4 + 2 + 2 + 1 + 2) / 5 over 8 / 4
    assert metrics["recommended_popularity"] == pytest.approx(11 / 5)
    assert metrics["popularity_lift"] == pytest.approx((11 / 5) / 2)
    # counts sorted (0, 1, 1, 3): sum (2i - n - 1) x_i / (n sum x) = (-1 + 1 + 9) / (4 * 5)
    assert metrics["gini"] == pytest.approx(9 / 20)
    assert metrics["novelty"] == pytest.approx(np.mean([0, 1, 1, 2, 1]))  # -log2(raters / 4)
    # user 0: cos(e1, e2) = 0 -> distance 1; user 1: cos(e2, (1,1)) = 1/sqrt2; user 2 has one movie
    assert metrics["intra_list_diversity"] == pytest.approx((1 + (1 - 1 / math.sqrt(2))) / 2)


def test_gini_is_zero_for_even_lists_and_near_one_for_one_movie():
    assert gini(np.array([[0, 1], [2, 3]]), 4) == 0.0
    assert gini(np.zeros((50, 1), dtype=np.int64), 100) == pytest.approx(0.99)


def test_beyond_accuracy_matches_plain_loops():
    """Gini by its mean-absolute-difference definition, novelty and diversity by loops
    over every slot and every pair, on random lists with empty slots."""
    rng = np.random.default_rng(8)
    n_users, n_movies, n = 40, 25, 6
    recommended = np.array([rng.choice(n_movies, n, replace=False) for _ in range(n_users)])
    recommended[rng.random(recommended.shape) < 0.2] = -1
    ratings_per_movie = rng.integers(1, n_users, n_movies)
    vectors = rng.normal(size=(n_movies, 4))
    metrics = beyond_accuracy(recommended, ratings_per_movie, n_users, vectors)
    counts = np.bincount(recommended[recommended >= 0], minlength=n_movies)
    mean_difference = sum(abs(a - b) for a in counts for b in counts) / n_movies**2
    assert metrics["gini"] == pytest.approx(mean_difference / (2 * counts.mean()))
    slots = [m for row in recommended for m in row if m >= 0]
    assert metrics["novelty"] == pytest.approx(np.mean([-math.log2(ratings_per_movie[m] / n_users) for m in slots]))
    per_user = []
    for row in recommended:
        listed = [m for m in row if m >= 0]
        pairs = [(a, b) for i, a in enumerate(listed) for b in listed[i + 1 :]]
        if pairs:
            norms = np.linalg.norm(vectors, axis=1)
            per_user.append(np.mean([1 - vectors[a] @ vectors[b] / norms[a] / norms[b] for a, b in pairs]))
    assert metrics["intra_list_diversity"] == pytest.approx(np.mean(per_user))

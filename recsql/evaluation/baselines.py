"""The baselines an evaluation scores beside recsql's model, on the same split: the
most popular movies, and EASE (Steck, 2019), the strong item-item model that a
recommender's lists must beat to be worth their keep.

Each gives the two lists recsql stores, in the training matrix's index space, so
:func:`recsql.evaluation.metrics.list_metrics` scores them exactly as it scores the
model's: every user's top ``n`` unrated movies, and every movie's ``k`` similar ones.
Both read the ratings as implicit feedback (who rated what), as they are usually run.

- ``popular``: movies by number of ratings; each movie's similar list is the most
  popular others (what a site without a model shows).
- ``ease``: B = -P / diag(P), P = (X^T X + lambda I)^-1 on the 0/1 pattern X; a user's
  scores are their row of X times B, a movie's similar list its row of B.  lambda is
  chosen from :data:`EASE_LAMBDAS` on a random share of the training ratings (never
  the test), then the model is refitted on all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.quality import RELEVANT, top_k_quality
from recsql.algorithms.ranking import ITEM_MODEL_LIMIT, ExactItemItem, dense_gram, ease_weights, rated_by
from recsql.algorithms.topk import TopK, block_rows, top_k_largest
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter

BASELINES = ("popular", "ease")
EASE_LAMBDAS = (250.0, 500.0, 1000.0, 2000.0)  # the grid bench_ranking tunes EASE over
VALIDATION_FRACTION = 0.1

# Rows of users' 0/1 training patterns and their row numbers -> their scores of every movie.
Scores = Callable[[sp.csr_matrix, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BaselineLists:
    """A baseline's lists, as a fit's: ``recommended`` (users x n movie indices, -1
    where empty) and ``similar`` (movies x k), with what it chose (``facts``)."""

    name: str
    recommended: np.ndarray
    similar: TopK
    facts: dict[str, Any] = field(default_factory=dict)


def check_baselines(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The baselines asked for, each known, once, in the order given."""
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise InvalidParameter(f"unknown baseline {', '.join(unknown)} (baselines: {', '.join(BASELINES)})")
    return tuple(dict.fromkeys(names))


def baseline_lists(name: str, train: RatingMatrix, n: int = 10, k: int = 20, seed: int = 0) -> BaselineLists:
    """The lists of baseline ``name`` fitted to ``train``."""
    if name == "popular":
        return popular_lists(train, n, k)
    if name == "ease":
        return ease_lists(train, n, k, seed)
    raise InvalidParameter(f"unknown baseline {name} (baselines: {', '.join(BASELINES)})")


def popular_lists(train: RatingMatrix, n: int = 10, k: int = 20) -> BaselineLists:
    counts = np.bincount(train.cols, minlength=train.n_movies).astype(np.float32)
    pattern = rated_by(train.csr)
    recommended = ranked(lambda rows, _users: np.broadcast_to(counts, (rows.shape[0], len(counts))), pattern, n)
    k = max(0, min(k, train.n_movies - 1))
    best = np.argsort(-counts, kind="stable")[: k + 1]
    indices = np.broadcast_to(best[:k], (train.n_movies, k)).copy()  # every list: the k most popular
    for rank, movie in enumerate(best[:k]):  # but a popular movie's own leaves it out
        indices[movie] = np.delete(best, rank)
    return BaselineLists("popular", recommended, TopK(indices, counts[indices].astype(np.float64)))


def check_fits(name: str, train: RatingMatrix) -> None:
    """Refuse a baseline the catalogue is too large for, before anything is fitted."""
    if name == "ease" and train.n_movies > ITEM_MODEL_LIMIT:
        raise InvalidParameter(
            f"the ease baseline inverts a movies x movies matrix: {train.n_movies} movies is more than "
            f"{ITEM_MODEL_LIMIT}; leave it out (baselines=('popular',))"
        )


def ease_lists(train: RatingMatrix, n: int = 10, k: int = 20, seed: int = 0) -> BaselineLists:
    check_fits("ease", train)
    lam = choose_ease_lambda(train, seed)
    pattern = rated_by(train.csr)
    model = ExactItemItem(ease_weights(dense_gram(pattern), lam), lam, similar_blend=0.0)
    recommended = ranked(lambda rows, users: model.choice_scores(users, rows), pattern, n)
    return BaselineLists("ease", recommended, model.similar_movies(k, np.zeros(train.n_movies)), {"ease_lambda": lam})


def choose_ease_lambda(train: RatingMatrix, seed: int = 0) -> float:
    """The lambda of :data:`EASE_LAMBDAS` whose top 10 has the best NDCG on a random
    :data:`VALIDATION_FRACTION` of ``train`` (liked ratings relevant, as in the test)."""
    rng = np.random.default_rng(seed)
    held = rng.random(train.nnz) < VALIDATION_FRACTION
    fit_pattern = sp.csr_matrix(
        (np.ones(int((~held).sum()), dtype=np.float32), (train.rows[~held], train.cols[~held])), shape=train.shape
    )
    liked = held & (train.values >= RELEVANT)
    users = np.unique(train.rows[liked])
    if len(users) == 0:
        return EASE_LAMBDAS[len(EASE_LAMBDAS) // 2]
    relevant = sp.csr_matrix(
        (np.ones(int(liked.sum())), (np.searchsorted(users, train.rows[liked]), train.cols[liked])),
        shape=(len(users), train.n_movies),
    )
    gram = dense_gram(fit_pattern)
    scores = {}
    for lam in EASE_LAMBDAS:
        weights = ease_weights(gram.copy(), lam)

        def scored(rows: sp.csr_matrix, _users: np.ndarray, b: np.ndarray = weights) -> np.ndarray:
            return np.asarray(rows @ b)

        top = ranked(scored, fit_pattern[users], 10)
        scores[lam] = top_k_quality(top, relevant)["ndcg_at_10"]
    return max(EASE_LAMBDAS, key=lambda lam: scores[lam])


def ranked(scores: Scores, pattern: sp.csr_matrix, n: int, users: np.ndarray | None = None) -> np.ndarray:
    """Each row's ``n`` best-scored movies it has not rated (-1 where none are left), a
    block of rows at a time; ``scores`` gets the block's rows and their ``users`` (the
    rows' own numbers by default)."""
    n_rows, n_movies = pattern.shape
    n = max(0, min(n, n_movies))
    top = np.full((n_rows, n), -1, dtype=np.int64)
    block = block_rows(n_movies)
    for start in range(0, n_rows, block):
        rows = pattern[start : start + block]
        whose = np.arange(start, start + rows.shape[0]) if users is None else users[start : start + rows.shape[0]]
        got = np.array(scores(rows, whose), dtype=np.float32)
        got[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        best, value = top_k_largest(got, n)
        top[start : start + rows.shape[0]] = np.where(np.isfinite(value), best, -1)
    return top

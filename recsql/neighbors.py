"""Top-K most similar movies for every movie, from movie factors, in bounded memory.

Two metrics:

* ``l1``: the tutorial's "difference score", the sum of absolute feature differences;
  smaller is more similar.
* ``cosine``: cosine similarity of the feature vectors; larger is more similar.

Movies are processed in blocks of rows, so memory is ``block x n_movies`` however large
the catalogue; the per-block top-K is an argpartition, then a sort of K entries.  Ties
are broken by the smaller movie index, so results are deterministic.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial.distance import cdist

from recsql.errors import InvalidParameter

Metric = Literal["l1", "cosine"]
METRICS: tuple[str, ...] = ("l1", "cosine")
BLOCK_CELLS = 8_000_000  # ~64 MB of float64 per block of scores


def check_similarity_params(k: int, metric: str) -> None:
    """Raise :class:`InvalidParameter` unless ``k`` and ``metric`` are usable."""
    if metric not in METRICS:
        raise InvalidParameter(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if k < 1:
        raise InvalidParameter(f"the number of similar movies must be at least 1, not {k}")


def top_k_similar(
    movie_factors: np.ndarray, k: int = 20, metric: Metric = "l1"
) -> tuple[np.ndarray, np.ndarray]:
    """For each movie (row), the indices of its K most similar other movies and their scores.

    Returns ``(indices, scores)``, both ``n_movies x K'`` with ``K' = min(K, n_movies - 1)``,
    rank order along axis 1.  A movie is never its own neighbour.
    """
    check_similarity_params(k, metric)
    factors = np.asarray(movie_factors, dtype=np.float64)
    n = factors.shape[0]
    k = max(0, min(k, n - 1))
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float64)
    if k == 0:
        return indices, scores
    if metric == "cosine":
        norms = np.linalg.norm(factors, axis=1, keepdims=True)
        unit = factors / np.where(norms == 0, 1.0, norms)
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        if metric == "l1":
            cost = cdist(factors[start:stop], factors, metric="cityblock")
        else:
            cost = -(unit[start:stop] @ unit.T)  # smaller cost = more similar
        cost[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(cost, k - 1, axis=1)[:, :k]
        part_cost = np.take_along_axis(cost, part, axis=1)
        order = np.lexsort((part, part_cost), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        best_cost = np.take_along_axis(part_cost, order, axis=1)
        indices[start:stop] = best
        scores[start:stop] = best_cost if metric == "l1" else -best_cost
    return indices, scores


def top_n_unrated(
    factors, rated, n: int = 10, users: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each user row, the ``n`` movies with the highest predicted rating it has not rated.

    ``factors`` is a :class:`~recsql.factorize.Factors`; ``rated`` a CSR users x movies
    matrix in the same index space whose stored cells are excluded.  Scores are computed
    a block of users at a time (BLAS), so memory stays ``block x n_movies``.  Returns
    ``(indices, scores)`` of shape ``len(users) x min(n, n_movies)``; a user with fewer
    unrated movies gets ``-1`` indices and ``nan`` scores in the empty slots.
    """
    users = np.arange(rated.shape[0]) if users is None else np.asarray(users)
    n_movies = factors.movie_factors.shape[0]
    n = max(0, min(n, n_movies))
    indices = np.full((len(users), n), -1, dtype=np.int64)
    scores = np.full((len(users), n), np.nan)
    if n == 0 or len(users) == 0:
        return indices, scores
    movie_bias = factors.movie_bias if factors.movie_bias is not None else 0.0
    block = max(1, BLOCK_CELLS // n_movies)
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        pred = factors.user_factors[rows] @ factors.movie_factors.T
        pred += factors.global_mean + movie_bias
        if factors.user_bias is not None:
            pred += factors.user_bias[rows, None]
        sub = rated[rows]
        pred[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
        part = np.argpartition(-pred, n - 1, axis=1)[:, :n]
        part_scores = np.take_along_axis(pred, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        if factors.clip is not None:
            best_scores = np.clip(best_scores, *factors.clip)
        empty = ~np.isfinite(np.take_along_axis(pred, best, axis=1))
        best[empty], best_scores[empty] = -1, np.nan
        indices[start : start + len(rows)] = best
        scores[start : start + len(rows)] = best_scores
    return indices, scores

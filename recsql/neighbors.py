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

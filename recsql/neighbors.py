"""Top-K similar movies for every movie and top-N unrated movies for every user, from
Factors, in bounded memory.

Similarity metrics:

* ``l1``: the tutorial's "difference score", the sum of absolute feature differences;
  smaller is more similar.
* ``cosine``: cosine similarity of the feature vectors; larger is more similar.

Both jobs score a block of rows against every movie at a time (BLAS for cosine and
predictions), so memory stays ``block x n_movies`` however large the catalogue, and
then select each row's best K with :func:`top_k_largest`, which avoids a full
argpartition of every row.  Ties are broken by the smaller movie index.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from recsql.errors import InvalidParameter
from recsql.progress import Step, no_step

Metric = Literal["l1", "cosine"]
METRICS: tuple[str, ...] = ("l1", "cosine")
BLOCK_CELLS = 8_000_000  # scores per block: 32 MB of float32
GROUP = 32  # candidate groups of top_k_largest


def check_similarity_params(k: int, metric: str) -> None:
    """Raise :class:`InvalidParameter` unless ``k`` and ``metric`` are usable."""
    if metric not in METRICS:
        raise InvalidParameter(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if k < 1:
        raise InvalidParameter(f"the number of similar movies must be at least 1, not {k}")


def top_k_largest(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest scores, best first.

    Rather than partially sorting every row, the columns are split into ``n / GROUP``
    strided groups (column j in group j mod n_groups); a row's k largest values lie in
    the k groups with the largest maxima (each of those groups holds a value at least as
    large as any value of a group outside them), so only those k x GROUP candidates are
    partitioned.  The group maxima are one vectorized reduction.  -inf marks excluded cells.
    """
    rows, n = scores.shape
    k = min(k, n)
    n_groups = n // GROUP
    if n_groups <= 2 * k:
        candidates = np.broadcast_to(np.arange(n), (rows, n))
    else:
        full = n_groups * GROUP
        maxima = scores[:, :full].reshape(rows, GROUP, n_groups).max(axis=1)
        groups = np.argpartition(maxima, n_groups - k, axis=1)[:, n_groups - k :]
        candidates = (groups[:, :, None] + np.arange(GROUP) * n_groups).reshape(rows, -1)
        if full < n:  # the last n - full columns are in no group: always candidates
            tail = np.broadcast_to(np.arange(full, n), (rows, n - full))
            candidates = np.concatenate([candidates, tail], axis=1)
    values = np.take_along_axis(scores, candidates, axis=1)
    width = values.shape[1]
    best = np.argpartition(values, width - k, axis=1)[:, width - k :]
    index = np.take_along_axis(candidates, best, axis=1)
    value = np.take_along_axis(values, best, axis=1)
    order = np.lexsort((index, -value), axis=1)
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(value, order, axis=1)


def block_count(n_rows: int, n_movies: int) -> int:
    """How many blocks (and ``step`` calls) scoring ``n_rows`` rows against the catalogue takes."""
    block = max(1, BLOCK_CELLS // max(n_movies, 1))
    return -(-n_rows // block)


def top_k_similar(
    movie_factors: np.ndarray, k: int = 20, metric: Metric = "cosine", step: Step = no_step
) -> tuple[np.ndarray, np.ndarray]:
    """For each movie (row), the indices of its K most similar other movies and their scores.

    Returns ``(indices, scores)``, both ``n_movies x K'`` with ``K' = min(K, n_movies - 1)``,
    rank order along axis 1.  A movie is never its own neighbour.
    """
    check_similarity_params(k, metric)
    n = movie_factors.shape[0]
    k = max(0, min(k, n - 1))
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float64)
    if k == 0:
        return indices, scores
    if metric == "cosine":
        norms = np.linalg.norm(movie_factors, axis=1, keepdims=True)
        unit = (movie_factors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    else:
        factors = np.asarray(movie_factors, dtype=np.float64)
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        if metric == "l1":
            closeness = -cdist(factors[start:stop], factors, metric="cityblock")
        else:
            closeness = unit[start:stop] @ unit.T
        closeness[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        best, value = top_k_largest(closeness, k)
        indices[start:stop] = best
        scores[start:stop] = -value if metric == "l1" else value
        step(1)
    return indices, scores


def top_n_unrated(
    factors, rated: sp.csr_matrix, n: int = 10, users: np.ndarray | None = None, step: Step = no_step
) -> tuple[np.ndarray, np.ndarray]:
    """For each user row, the ``n`` movies with the highest predicted rating it has not rated.

    ``factors`` is a :class:`~recsql.factorize.Factors`; ``rated`` a CSR users x movies
    matrix in the same index space whose stored cells are excluded.  Returns
    ``(indices, scores)`` of shape ``len(users) x min(n, n_movies)``; a user with fewer
    unrated movies gets ``-1`` indices and ``nan`` scores in the empty slots.  Scores are
    predictions (clipped to the model's scale), computed in float32.
    """
    users = np.arange(rated.shape[0]) if users is None else np.asarray(users)
    n_movies = factors.movie_factors.shape[0]
    n = max(0, min(n, n_movies))
    indices = np.full((len(users), n), -1, dtype=np.int64)
    scores = np.full((len(users), n), np.nan)
    if n == 0 or len(users) == 0:
        return indices, scores
    # Biases ride along in the product: [u, 1, mean + b_u] . [m, b_m, 1] = prediction,
    # so each block is one BLAS call and no extra pass over its scores.
    movie_bias = np.zeros(n_movies) if factors.movie_bias is None else factors.movie_bias
    user_bias = np.zeros(len(factors.user_factors)) if factors.user_bias is None else factors.user_bias
    movie_t = np.ascontiguousarray(
        np.hstack([factors.movie_factors, movie_bias[:, None], np.ones((n_movies, 1))]).T, dtype=np.float32
    )
    user_f = np.hstack([
        factors.user_factors, np.ones((len(user_bias), 1)), (factors.global_mean + user_bias)[:, None]
    ]).astype(np.float32)
    block = max(1, BLOCK_CELLS // n_movies)
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        pred = user_f[rows] @ movie_t
        sub = rated[rows]
        pred[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
        best, value = top_k_largest(pred, n)
        value = value.astype(np.float64)
        empty = ~np.isfinite(value)
        if factors.clip is not None:
            value = np.clip(value, *factors.clip)
        best[empty], value[empty] = -1, np.nan
        indices[start : start + len(rows)] = best
        scores[start : start + len(rows)] = value
        step(1)
    return indices, scores


PRIOR_COUNT = 20  # ratings' worth of "average" every movie starts with
POPULAR_KEPT = 200


def popular(matrix, n: int = POPULAR_KEPT, prior_count: float = PRIOR_COUNT) -> dict[str, np.ndarray]:
    """The ``n`` movies with the highest damped mean rating, best first.

    damped mean = (prior_count * overall mean + sum of ratings) / (prior_count + count):
    a movie needs many good ratings to beat the overall mean by much.
    """
    counts = np.bincount(matrix.cols, minlength=matrix.n_movies)
    sums = np.bincount(matrix.cols, weights=matrix.values, minlength=matrix.n_movies)
    overall = float(matrix.values.mean())
    score = (prior_count * overall + sums) / (prior_count + counts)
    best, value = top_k_largest(score[None, :], min(n, matrix.n_movies))
    best = best[0]
    return {
        "movie_index": best,
        "score": value[0].astype(np.float64),
        "n_ratings": counts[best],
        "mean_rating": sums[best] / np.maximum(counts[best], 1),
    }

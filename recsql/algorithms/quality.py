"""How good ranked lists are against held-out choices: NDCG and friends, and the
"because you rated" ranking that similar-movie lists make.

Pure array code shared by the evaluation of a run (:mod:`recsql.evaluation.metrics`) and
by the item model's choice of its own settings (:mod:`recsql.algorithms.item_tuning`),
so what tunes a model and what scores it are the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.topk import TopK, block_rows, top_k_largest
from recsql.progress import Step, no_step
from recsql.threads import parallel_blocks, thread_count

# A held-back rating this high is a relevant choice (every one, when none is: implicit
# feedback); the item model's similar lists weigh ratings below it less.
RELEVANT = 4.0
DENSE_LENDS = 4_096  # up to this many movies the lent scores are a dense movies x movies array


def top_k_quality(top: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> dict[str, float]:
    """precision@k, recall@k and NDCG@k of ranked lists against relevant sets.

    ``top`` is one row of movie indices per user, best first (-1: an empty slot);
    ``relevant`` has the same rows.  Averages over the rows (each has a relevant movie).
    """
    top = top[:, :k]
    valid = top >= 0
    hits = np.zeros(top.shape)
    hits[valid] = np.asarray(relevant[np.nonzero(valid)[0], top[valid]]).ravel()
    n_relevant = np.diff(relevant.indptr)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return {
        f"precision_at_{k}": float(np.mean(hits.sum(axis=1) / k)),
        f"recall_at_{k}": float(np.mean(hits.sum(axis=1) / n_relevant)),
        f"ndcg_at_{k}": float(np.mean((hits * discounts[: np.size(hits, 1)]).sum(axis=1) / ideal)),
    }


def because_you_rated_top(
    similar: TopK, rated: sp.csr_matrix, k: int = 10, weights: np.ndarray | None = None, step: Step = no_step
) -> np.ndarray:
    """Each row of ``rated`` (a user's rated movies) ranked "because you rated": every
    rated movie lends each movie on its similar list that list's score (``weights``,
    default ``similar.scores``), a movie's score is the sum it gets, and the best ``k``
    unrated movies that are on some list are returned (-1: an empty slot)."""
    n_movies = rated.shape[1]
    n, width = similar.indices.shape
    lent = similar.scores if weights is None else weights
    lends = sp.csr_matrix(
        (lent.ravel().astype(np.float32), similar.indices.ravel(), np.arange(0, n * width + 1, width)),
        shape=(n_movies, n_movies),
    )
    on_a_list = lends.copy()
    on_a_list.data[:] = 1.0  # scores can be 0; being listed is what lets a movie rank
    if n_movies <= DENSE_LENDS:  # a sparse x dense product is several times faster than sparse x sparse
        lends, on_a_list = lends.toarray(), on_a_list.toarray()
    top = np.full((rated.shape[0], k), -1, dtype=np.int64)
    # Blocks of rows on every thread: scipy's sparse products run one thread each.
    block = max(1, min(block_rows(n_movies), -(-rated.shape[0] // thread_count())))

    def one_block(start: int) -> None:
        rows = rated[start : start + block]
        scores = _dense(rows.astype(np.float32) @ lends)
        listed = _dense(rows.astype(np.float32) @ on_a_list) > 0
        scores[~listed] = -np.inf
        scores[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        best, value = top_k_largest(scores, k)
        best[~np.isfinite(value)] = -1
        top[start : start + rows.shape[0], : best.shape[1]] = best

    parallel_blocks(range(0, rated.shape[0], block), one_block, step)
    return top


def _dense(product: Any) -> np.ndarray:
    return product.toarray() if sp.issparse(product) else np.asarray(product)

"""Lists ranked on the spot from a stored model, where the stored lists do not answer:
a new user folded in from a few ratings, a list longer than the one stored, movies the
caller leaves out.  Serving (:class:`recsql.Recommender`) and a model in memory
(:class:`recsql.Model`) both rank here, so they rank alike.

What is stored of a model is its factors and its lists, not its item-item weights, so
the item-item choice is the rated movies' stored similar-movie scores summed (each
rated movie lends its list), blended with the predicted rating as training blends its
own (:func:`~recsql.algorithms.ranking.blend`); a model whose lists are ordered by
predicted rating alone (``similar`` None) ranks by it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.factors import Factors, Ranking
from recsql.algorithms.outputs import Recommended
from recsql.algorithms.ranking import blend
from recsql.algorithms.topk import TopK


def similar_scores(similar: TopK, n_movies: int) -> sp.csr_matrix:
    """Stored similar-movie lists (indices into the model's movies, -1 where a list is
    shorter) as a movies x movies matrix of their scores."""
    listed = similar.indices >= 0
    rows = np.broadcast_to(np.arange(similar.indices.shape[0])[:, None], similar.indices.shape)[listed]
    return sp.csr_matrix((similar.scores[listed], (rows, similar.indices[listed])), shape=(n_movies, n_movies))


def rank_fresh(
    factors: Factors,
    similar: sp.csr_matrix | None,
    rated: sp.csr_matrix,
    skip: sp.csr_matrix,
    limit: int,
    users: np.ndarray | None = None,
) -> Recommended:
    """The best ``limit`` movies of each of ``users`` (rows of ``factors``; default all)
    outside their row of ``skip``, ordered by the choice their row of ``rated`` lends
    through ``similar`` blended with the predicted rating (or by the prediction alone)."""
    rank: Ranking | None = None
    if similar is not None:
        lends = similar.astype(np.float64)

        def rank(rows: np.ndarray, predictions: np.ndarray) -> np.ndarray:
            choice = (rated[rows].astype(np.float64) @ lends).toarray()
            return blend(choice, factors.clipped(predictions), factors.global_mean)

    top = factors.recommend(skip, limit, users=users, exact=True, rank=rank)
    rows = np.arange(rated.shape[0]) if users is None else np.asarray(users)
    listed = top.indices >= 0
    predicted = np.full(top.indices.shape, np.nan)
    predicted[listed] = factors.predict(np.broadcast_to(rows[:, None], top.indices.shape)[listed], top.indices[listed])
    return Recommended(top.indices, top.scores, predicted)

"""A model of what users choose to watch, for the lists applications show.

The rating model (:class:`~recsql.model.factors.Factors`) predicts how much a user will
like a movie *if* they watch it; fitted to squared rating error, it says little about
*which* movies they pick, and lists ranked by it alone lose to a most-popular list.
:class:`ItemItem` models the choice: Steck's EASE (2019), a closed-form item-item
regression of the 0/1 rated-by matrix X on itself,

    B = argmin ||X - X B||^2 + lambda ||B||^2  subject to diag(B) = 0,

whose solution, with P = (X^T X + lambda I)^-1, is B_ij = -P_ij / P_jj (i != j).  A
user's choice score for movie j is (x_u B)_j, the sum over the movies they rated.

The stored lists blend the two: a recommendation's score is the choice score times
exp(BLEND * (predicted rating - mean)), so among movies a user is likely to pick, the
ones they will like come first; a similar movie's score is B_ij times
exp(BLEND * movie bias).  ``BLEND`` = 0.5 and lambda = 500 were chosen on MovieLens
100K (docs/benchmarks.md).  B is a dense movies x movies matrix, so the model is fitted
only up to :data:`ITEM_MODEL_LIMIT` movies; larger catalogues keep lists from the
rating model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsql.data.matrix import RatingMatrix
from recsql.model.topk import TopK, block_rows, top_k_largest
from recsql.progress import Step, no_step

# Above this many movies the dense inverse (movies^3 work, movies^2 memory) costs too much.
ITEM_MODEL_LIMIT = 6_000
DEFAULT_ITEM_REGULARIZATION = 500.0
BLEND = 0.5


@dataclass(frozen=True)
class ItemItem:
    """EASE's item-item weights (``weights[i, j]``: how much having rated i says about j)."""

    weights: np.ndarray  # n_movies x n_movies, float32, zero diagonal

    @classmethod
    def fit(cls, matrix: RatingMatrix, regularization: float = DEFAULT_ITEM_REGULARIZATION) -> ItemItem:
        """Fit on who rated what (every known cell counts as 1, whatever its rating)."""
        rated = rated_by(matrix.csr)
        gram = (rated.T @ rated).toarray()
        gram[np.diag_indices_from(gram)] += regularization
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))[None, :]
        np.fill_diagonal(weights, 0.0)
        return cls(weights.astype(np.float32))

    def choice_scores(self, rated: sp.csr_matrix) -> np.ndarray:
        """x_u B for each row of a 0/1 users x movies matrix (dense, float32)."""
        return np.asarray(rated.astype(np.float32) @ self.weights)

    def similar_movies(self, k: int, movie_bias: np.ndarray, step: Step = no_step) -> TopK:
        """Each movie's ``k`` best other movies by B_ij * exp(BLEND * b_j), best first."""
        n = len(self.weights)
        k = max(0, min(k, n - 1))
        boost = np.exp(BLEND * movie_bias).astype(np.float32)
        indices = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float64)
        if k == 0:
            return TopK(indices, scores)
        block = block_rows(n)
        for start in range(0, n, block):
            stop = min(n, start + block)
            blended = self.weights[start:stop] * boost[None, :]
            blended[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            best, value = top_k_largest(blended, k)
            indices[start:stop], scores[start:stop] = best, value
            step(1)
        return TopK(indices, scores)


def rated_by(ratings: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 pattern of a ratings matrix (explicit zero ratings count as rated)."""
    return sp.csr_matrix((np.ones(ratings.nnz, dtype=np.float32), ratings.indices, ratings.indptr), shape=ratings.shape)


def blend(choice: np.ndarray, predictions: np.ndarray, global_mean: float) -> np.ndarray:
    """A recommendation's ranking score: choice score times exp(BLEND * (rating - mean))."""
    return choice * np.exp(BLEND * (predictions - global_mean))

"""A model of what users choose to watch, for the lists applications show.

The rating model (:class:`~recsql.algorithms.factors.Factors`) predicts how much a user will
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
100K (docs/benchmarks.md).  B is solved exactly (a dense movies x movies inverse) up to
:data:`ITEM_MODEL_LIMIT` movies and through a rank-:data:`ITEM_RANK` eigen-approximation
of X^T X above (:class:`LowRankItemItem`), which on MovieLens 100K ranks as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.sparse import top_singular
from recsql.algorithms.topk import TopK, block_rows, top_k_largest
from recsql.data.matrix import RatingMatrix
from recsql.progress import Step, no_step
from recsql.threads import parallel_blocks

# Up to this many movies B is solved exactly (dense: movies^3 work, movies^2 memory);
# above it, through the top ITEM_RANK eigenvectors of X^T X (low-rank EASE).
ITEM_MODEL_LIMIT = 3_000
ITEM_RANK = 32
DEFAULT_ITEM_REGULARIZATION = 500.0
BLEND = 0.5


class ItemItem(ABC):
    """EASE's item-item weights B (``B[i, j]``: how much having rated i says about j)."""

    @property
    @abstractmethod
    def n_movies(self) -> int:
        """How many movies B relates."""

    @abstractmethod
    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of B (float32; the diagonal need not be zero)."""

    @abstractmethod
    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        """The choice scores of every movie (dense, float32) for the user rows ``users``,
        whose rows of the 0/1 users x movies matrix are ``rated`` (EASE: x_u B); entries
        of movies a row has rated are meaningless (they are never ranked)."""

    # How much a similar movie's own bias lifts it: B_ij * exp(similar_blend * b_j).
    similar_blend: float = BLEND

    def similar_movies(self, k: int, movie_bias: np.ndarray, step: Step = no_step, rows: range | None = None) -> TopK:
        """Each movie's ``k`` best other movies by B_ij * exp(similar_blend * b_j), best
        first; only the movies ``rows`` (default all) are listed, against every movie."""
        n = self.n_movies
        rows = range(n) if rows is None else rows
        k = max(0, min(k, n - 1))
        boost = np.exp(self.similar_blend * movie_bias).astype(np.float32)
        indices = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k), dtype=np.float64)
        if k == 0 or len(rows) == 0:
            return TopK(indices, scores)
        block = block_rows(n)

        def one_block(start: int) -> None:
            stop = min(rows.stop, start + block)
            blended = self.weight_rows(start, stop) * boost[None, :]
            blended[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            best, value = top_k_largest(blended, k)
            at = slice(start - rows.start, stop - rows.start)
            indices[at], scores[at] = best, value

        parallel_blocks(range(rows.start, rows.stop, block), one_block, step)
        return TopK(indices, scores)


@dataclass(frozen=True)
class ExactItemItem(ItemItem):
    """B from the dense inverse P = (X^T X + lambda I)^-1: B_ij = -P_ij / P_jj."""

    weights: np.ndarray  # n_movies x n_movies, float32, zero diagonal

    @property
    def n_movies(self) -> int:
        return len(self.weights)

    @classmethod
    def fit(cls, rated: sp.csr_matrix, regularization: float) -> ExactItemItem:
        gram = (rated.T @ rated).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += regularization
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))[None, :]
        np.fill_diagonal(weights, 0.0)
        return cls(weights.astype(np.float32))

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        return self.weights[start:stop]

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rated.astype(np.float32) @ self.weights)


@dataclass(frozen=True)
class LowRankItemItem(ItemItem):
    """B through the top eigenpairs (V, w) of G = X^T X: with S = w / (w + lambda),
    P ~ (I - V S V^T) / lambda, so B_ij = (V S V^T)_ij / d_j, d_j = 1 - (V S V^T)_jj.
    The eigenpairs come from a randomized subspace iteration through X (G is never
    formed), so the cost grows with the ratings, not with movies^2."""

    left: np.ndarray  # n_movies x r: V S
    right: np.ndarray  # r x n_movies: V^T / d

    @property
    def n_movies(self) -> int:
        return len(self.left)

    @classmethod
    def fit(cls, rated: sp.csr_matrix, regularization: float, rank: int = ITEM_RANK, seed: int = 0) -> LowRankItemItem:
        rank = max(1, min(rank, rated.shape[1] - 1))
        values, _, v = top_singular(rated, rank, seed, power=3)  # V, w: eigenpairs of X^T X
        shrink = values / (values + regularization)
        d = 1.0 - (v**2 * shrink).sum(axis=1)
        return cls((v * shrink).astype(np.float32), (v / d[:, None]).T.astype(np.float32))

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        return self.left[start:stop] @ self.right

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rated.astype(np.float32) @ self.left) @ self.right


@dataclass(frozen=True)
class FactorChoice(ItemItem):
    """The choice model as factors: a user's choice score for movie j is u . v_j and
    B_ij = v_i . v_j, from an implicit-feedback factorization of who rated what
    (Hu, Koren & Volinsky 2008: the Spark backend's counterpart of EASE, fitted by
    MLlib's ``ALS(implicitPrefs=True)``).  Similar movies are not lifted by their bias:
    on MovieLens 100K u1 the lift cost their NDCG@10 (0.404 without, 0.392 with)."""

    user_vectors: np.ndarray  # n_users x r, rows as the rating model's users
    movie_vectors: np.ndarray  # n_movies x r
    similar_blend = 0.0

    @property
    def n_movies(self) -> int:
        return len(self.movie_vectors)

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        return (self.movie_vectors[start:stop] @ self.movie_vectors.T).astype(np.float32)

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        return (self.user_vectors[users] @ self.movie_vectors.T).astype(np.float32)

    def with_users(self, users: np.ndarray) -> FactorChoice:
        """The same movies with only the user rows ``users`` (renumbered 0..)."""
        return FactorChoice(self.user_vectors[users], self.movie_vectors)


def fit_item_model(
    matrix: RatingMatrix, regularization: float = DEFAULT_ITEM_REGULARIZATION, seed: int = 0
) -> ItemItem:
    """The pick model of a rating matrix: exact up to ITEM_MODEL_LIMIT movies, low-rank above."""
    rated = rated_by(matrix.csr)
    if matrix.n_movies <= ITEM_MODEL_LIMIT:
        return ExactItemItem.fit(rated, regularization)
    return LowRankItemItem.fit(rated, regularization, seed=seed)


def rated_by(ratings: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 pattern of a ratings matrix (explicit zero ratings count as rated)."""
    return sp.csr_matrix((np.ones(ratings.nnz, dtype=np.float32), ratings.indices, ratings.indptr), shape=ratings.shape)


def blend(choice: np.ndarray, predictions: np.ndarray, global_mean: float) -> np.ndarray:
    """A recommendation's ranking score: choice score times exp(BLEND * (rating - mean))."""
    return choice * np.exp(BLEND * (predictions - global_mean))

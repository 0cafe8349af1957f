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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recsql.algorithms.quality import RELEVANT
from recsql.algorithms.sparse import top_singular
from recsql.algorithms.topk import TopK, block_rows, top_k_largest
from recsql.progress import Step, no_step
from recsql.threads import parallel_blocks, thread_count

# B is solved exactly (dense: movies^3 work, movies^2 memory) where it is affordable
# (:func:`exact_affordable`): at most ITEM_MODEL_LIMIT movies, its n x n float32
# buffer within EXACT_MEMORY and half the free memory, and its estimated seconds within
# the exact budget (:func:`exact_budget`: EXACT_SECONDS for every BUDGET_RATINGS
# ratings, at least EXACT_SECONDS: about 4 % of a retrain at any size); above, through
# the top ITEM_RANK eigenvectors of X^T X (low-rank EASE).
ITEM_MODEL_LIMIT = 20_000
EXACT_MEMORY = 2 * 1024**3
EXACT_SECONDS = 1.0
BUDGET_RATINGS = 12_500_000
# Rates measured on 2 cores (docs/benchmarks.md): the Cholesky inverse (n^3 / s), the
# Gram's sparse product (co-rated pairs, the sum of users' counts squared / s) and
# scoring every user against B (ratings x movies / s).
SOLVE_RATE, GRAM_RATE, SCORE_RATE = 1.4e11, 6.0e8, 1.0e10
GRAM_BLOCK_CELLS = 16_000_000  # dense Gram cells one sparse product block fills
ITEM_RANK = 32
DEFAULT_ITEM_REGULARIZATION = 500.0
BLEND = 0.5


@dataclass(frozen=True)
class ItemSettings:
    """The chosen penalties, lift and liked weight, and the validation NDCG@10 of every
    choice tried (``recommend``: of recommendations by lambda; ``similar``: of similar
    lists by lambda, unweighted at lift BLEND, the chosen lambda's at the chosen weight
    and lift; ``weights``: of similar lists by liked weight, each at its best lift,
    ``lifts``)."""

    regularization: float = DEFAULT_ITEM_REGULARIZATION
    similar_regularization: float = DEFAULT_ITEM_REGULARIZATION
    similar_blend: float = BLEND
    similar_weight: float = 1.0  # in the similar model's Gram, a rating below liked weighs this (liked: 1)
    recommend: dict[float, float] = field(default_factory=dict, compare=False)
    similar: dict[float, float] = field(default_factory=dict, compare=False)
    weights: dict[float, float] = field(default_factory=dict, compare=False)
    lifts: dict[float, float] = field(default_factory=dict, compare=False)

    def unweighted(self) -> ItemSettings:
        """The same choice for a model that cannot weigh liked ratings (low-rank alone):
        similar lists from the 0/1 pattern, at the lift that was best for it."""
        similar = dict(self.similar)
        if 1.0 in self.weights:
            similar[self.similar_regularization] = self.weights[1.0]
        lift = self.lifts.get(1.0, BLEND)
        return replace(self, similar_blend=lift, similar_weight=1.0, similar=similar)

    def tuning(self) -> dict[str, Any]:
        """The validation NDCG@10 of every choice tried, by list (JSON-ready)."""
        return {
            "recommend_ndcg": {str(k): round(v, 4) for k, v in sorted(self.recommend.items())},
            "similar_ndcg": {str(k): round(v, 4) for k, v in sorted(self.similar.items())},
            "similar_weight_ndcg": {str(k): round(v, 4) for k, v in sorted(self.weights.items())},
        }


# What an item model is told of its penalties: one for both lists, the settings an
# earlier fit chose, or None: choose them from the data.
ItemPenalty = float | ItemSettings | None


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
    # The penalties and lift chosen from the data (None: given, or not EASE).
    settings: ItemSettings | None = None

    def facts(self) -> dict[str, Any]:
        """How this model was made, stored in a run's parameters."""
        return {"item_model": type(self).__name__}

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
    regularization: float = DEFAULT_ITEM_REGULARIZATION
    similar_blend: float = BLEND
    settings: ItemSettings | None = None  # chosen from the data (None: given)

    def facts(self) -> dict[str, Any]:
        return {
            "item_model": "exact",
            "item_regularization": self.regularization,
            "similar_blend": self.similar_blend,
            **tuning_facts(self.settings),
        }

    @property
    def n_movies(self) -> int:
        return len(self.weights)

    @classmethod
    def fit(cls, rated: sp.csr_matrix, regularization: float, similar_blend: float = BLEND) -> ExactItemItem:
        return cls(ease_weights(dense_gram(rated), regularization), regularization, similar_blend)

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        return self.weights[start:stop]

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rated.astype(np.float32) @ self.weights)


def dense_gram(rated: sp.csr_matrix, dtype: type = np.float32, right: sp.csr_matrix | None = None) -> np.ndarray:
    """X^T X of a users x movies matrix (X^T Y given ``right`` = Y, of the same shape) as
    a dense C-ordered array, built a block of movies at a time so the sparse product
    never holds more than a block's columns, the blocks on every thread (scipy's sparse
    product runs one thread each)."""
    n = rated.shape[1]
    gram = np.empty((n, n), dtype=dtype)
    by_movie = rated.T.tocsr()
    columns = (rated if right is None else right).tocsc()
    block = max(1, min(GRAM_BLOCK_CELLS // max(n, 1), -(-n // thread_count())))

    def one_block(start: int) -> None:
        stop = min(n, start + block)
        gram[:, start:stop] = (by_movie @ columns[:, start:stop]).toarray()

    parallel_blocks(range(0, n, block), one_block)
    return gram


def liked_grams(ratings: sp.csr_matrix, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The Grams of the 0/1 pattern and of the liked pattern (:func:`liked_pattern`) of
    ``ratings``, together for less than two Grams' work.

    With L the pattern of the liked ratings and N of the others, X = L + N and
    X_w = L + wN, so X^T X = A + S + D and X_w^T X_w = A + wS + w^2 D, where A = L^T L,
    S = L^T N + (L^T N)^T and D = N^T N: three sparse products whose co-rated pairs
    (l^2 + ln + n^2 per user) are at most one Gram's ((l + n)^2).  Four n x n arrays at
    the peak."""
    liked = ratings.data >= RELEVANT
    if not liked.any():
        plain = dense_gram(rated_by(ratings))
        return plain, plain.copy()

    def part(cells: np.ndarray) -> sp.csr_matrix:
        pattern = sp.csr_matrix(
            (cells.astype(np.float32), ratings.indices.copy(), ratings.indptr.copy()), shape=ratings.shape
        )
        pattern.eliminate_zeros()  # in its own arrays: the ratings' stay as they are
        return pattern

    liked_part, other = part(liked), part(~liked)
    a, cross, plain = dense_gram(liked_part), dense_gram(liked_part, right=other), dense_gram(other)
    weighted = cross + cross.T
    del cross
    plain += a
    plain += weighted  # A + S + D
    a *= 1.0 - weight * weight
    weighted *= weight - weight * weight
    weighted += a
    np.multiply(plain, weight * weight, out=a)
    weighted += a  # w^2 (A + S + D) + (1 - w^2) A + (w - w^2) S = A + wS + w^2 D
    return plain, weighted


def ease_weights(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE's B = -P / diag(P), diagonal 0, with P = (gram + lambda I)^-1, computed in
    ``gram``'s own memory (overwritten and returned): a Cholesky factorization and its
    inverse (LAPACK potrf, potri) in the array's precision, about n^3 flops, one n x n
    buffer.  A symmetric C-ordered array is its own Fortran-ordered transpose, which is
    what lets LAPACK work in place."""
    n = len(gram)
    gram[np.diag_indices(n)] += regularization
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    upper = gram.T  # Fortran order, same memory
    factor, info = potrf(upper, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0 or not np.shares_memory(inverse, gram):
        raise ArithmeticError(f"the item model's Gram matrix is not positive definite (LAPACK info {info})")
    _mirror_upper(inverse)  # potri fills one triangle; gram now holds P (symmetric)
    diagonal = np.diag(gram).copy()
    gram /= -diagonal[None, :]
    gram[np.diag_indices(n)] = 0.0
    return gram


def _mirror_upper(matrix: np.ndarray, block: int = 128) -> None:
    """Copy a Fortran-ordered matrix's upper triangle onto its lower one, a band of
    ``block`` rows at a time (small bands: their diagonal tiles are copied by index,
    which on large tiles cost more than the whole off-diagonal copy)."""
    rows = matrix.T  # C-ordered: its lower triangle is the one to copy up
    n = len(rows)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows[start:stop, stop:] = rows[stop:, start:stop].T
        tile = rows[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        tile[upper] = tile.T[upper]


@dataclass(frozen=True)
class Eigen:
    """The top eigenpairs (w, V) of G = X^T X, from a randomized subspace iteration
    through X (G is never formed), so the cost grows with the ratings, not movies^2."""

    values: np.ndarray
    vectors: np.ndarray  # n_movies x r

    @classmethod
    def of(cls, rated: sp.csr_matrix, rank: int = ITEM_RANK, seed: int = 0) -> Eigen:
        rank = max(1, min(rank, rated.shape[1] - 1))
        values, _, vectors = top_singular(rated, rank, seed, power=3)
        return cls(values, vectors)


@dataclass(frozen=True)
class LowRankItemItem(ItemItem):
    """B through the top eigenpairs (V, w) of G = X^T X: with S = w / (w + lambda),
    P ~ (I - V S V^T) / lambda, so B_ij = (V S V^T)_ij / d_j, d_j = 1 - (V S V^T)_jj."""

    left: np.ndarray  # n_movies x r: V S
    right: np.ndarray  # r x n_movies: V^T / d
    regularization: float = DEFAULT_ITEM_REGULARIZATION
    similar_blend: float = BLEND
    settings: ItemSettings | None = None

    def facts(self) -> dict[str, Any]:
        return {
            "item_model": f"low-rank {self.left.shape[1]}",
            "item_regularization": self.regularization,
            "similar_blend": self.similar_blend,
            **tuning_facts(self.settings),
        }

    @property
    def n_movies(self) -> int:
        return len(self.left)

    @classmethod
    def fit(
        cls,
        rated: sp.csr_matrix,
        regularization: float,
        rank: int = ITEM_RANK,
        seed: int = 0,
        similar_blend: float = BLEND,
    ) -> LowRankItemItem:
        return cls.of_eigen(Eigen.of(rated, rank, seed), regularization, similar_blend)

    @classmethod
    def of_eigen(
        cls, eigen: Eigen, regularization: float, similar_blend: float = BLEND, settings: ItemSettings | None = None
    ) -> LowRankItemItem:
        """The model for one penalty from eigenpairs shared by any number of penalties."""
        shrink = eigen.values / (eigen.values + regularization)
        d = 1.0 - (eigen.vectors**2 * shrink).sum(axis=1)
        left, right = (eigen.vectors * shrink).astype(np.float32), (eigen.vectors / d[:, None]).T.astype(np.float32)
        return cls(left, right, regularization, similar_blend, settings)

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


@dataclass(frozen=True)
class SplitItemItem(ItemItem):
    """Two item models in one: ``recommend``'s choice scores order recommendations and
    ``similar``'s weights the similar-movie lists, each with the penalty that ranks its
    own list best (:mod:`recsql.algorithms.item_tuning`)."""

    recommend: ItemItem
    similar: ItemItem
    settings: ItemSettings | None = None

    @property
    def n_movies(self) -> int:
        return self.recommend.n_movies

    @property
    def similar_blend(self) -> float:  # type: ignore[override]
        return self.similar.similar_blend

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        return self.similar.weight_rows(start, stop)

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        return self.recommend.choice_scores(users, rated)

    def facts(self) -> dict[str, Any]:
        similar = self.similar.facts()
        return {
            **self.recommend.facts(),
            "similar_regularization": similar.get("item_regularization"),
            "similar_blend": self.similar_blend,
            **tuning_facts(self.settings),
        }


def tuning_facts(settings: ItemSettings | None) -> dict[str, Any]:
    """What a model records of the settings chosen from the data (nothing when given)."""
    if settings is None:
        return {}
    return {"similar_weight": settings.similar_weight, "item_tuning": settings.tuning()}


def rated_by(ratings: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 pattern of a ratings matrix (explicit zero ratings count as rated)."""
    return sp.csr_matrix((np.ones(ratings.nnz, dtype=np.float32), ratings.indices, ratings.indptr), shape=ratings.shape)


def liked_pattern(ratings: sp.csr_matrix, weight: float) -> sp.csr_matrix:
    """The pattern of a ratings matrix with 1 where a rating is liked (>= RELEVANT, what
    the lists are judged by) and ``weight`` where it is not; the plain 0/1 pattern when
    nothing is liked (implicit feedback)."""
    liked = ratings.data >= RELEVANT
    if not liked.any():
        return rated_by(ratings)
    data = np.where(liked, 1.0, weight).astype(np.float32)
    return sp.csr_matrix((data, ratings.indices, ratings.indptr), shape=ratings.shape)


def blend(choice: np.ndarray, predictions: np.ndarray, global_mean: float) -> np.ndarray:
    """A recommendation's ranking score: choice score times exp(BLEND * (rating - mean))."""
    return choice * np.exp(BLEND * (predictions - global_mean))


def exact_budget(n_ratings: int) -> float:
    """Seconds the exact part of the item model may take for ``n_ratings`` ratings: a
    retrain costs about 2 microseconds a rating on 2 cores, so EXACT_SECONDS (1 s) is
    some 4 % of it at 12.5 M ratings; it grows with the ratings above, and stays 1 s
    below, where the search and eigenpairs cost more than it anyway."""
    return EXACT_SECONDS * max(1.0, n_ratings / BUDGET_RATINGS)


def exact_affordable(
    user_counts: np.ndarray, n_movies: int, copies: int = 1, grams: int = 1, budget: float | None = None
) -> bool:
    """Whether ``copies`` exact item models of ``n_movies`` movies from ``grams`` Gram
    matrices, rated ``user_counts`` times by each user, fit the memory and the seconds
    they may take (``budget``, default EXACT_SECONDS).  Each model's weights take a
    Gram's memory or a copy of it; two Grams are made together (:func:`liked_grams`) in
    four n x n arrays."""
    buffers = copies if grams == 1 else max(copies, 4)
    cells = buffers * n_movies * n_movies * np.dtype(np.float32).itemsize
    fits = n_movies <= ITEM_MODEL_LIMIT and cells <= min(EXACT_MEMORY, _free_memory() // 2)
    seconds = EXACT_SECONDS if budget is None else budget
    return fits and exact_seconds(user_counts, n_movies, copies) <= seconds


def largest_affordable(ratings_by_size: np.ndarray, copies: int = 1, budget: float | None = None) -> int:
    """The largest n for which the solves and the scoring of the exact models of the
    first n movies fit ``budget`` (default EXACT_SECONDS; ``ratings_by_size[n - 1]``:
    their ratings; the Gram's term, which needs each user's count, comes on top)."""
    sizes = np.arange(1, len(ratings_by_size) + 1, dtype=np.float64)
    seconds = exact_seconds(np.zeros(0), sizes, copies, ratings=ratings_by_size)
    limit = EXACT_SECONDS if budget is None else budget
    return int(np.searchsorted(seconds > limit, True))  # seconds grow with n


def exact_seconds(user_counts: np.ndarray, n_movies: Any, copies: int = 1, ratings: Any = None) -> Any:
    """The exact item model's estimated seconds on 2 cores: the Gram (co-rated pairs,
    the sum of users' counts squared; the liked Gram beside it adds no pairs, see
    :func:`liked_grams`), the solves (n^3 each), scoring (ratings x n).  ``n_movies``
    and ``ratings`` (default: the counts' sum) may be arrays of sizes and their
    ratings, for the solves' and scoring's terms of many sizes at once."""
    counts = np.asarray(user_counts, dtype=np.float64)
    n = np.asarray(n_movies, dtype=np.float64)
    rated = counts.sum() if ratings is None else np.asarray(ratings, dtype=np.float64)
    seconds = float((counts**2).sum()) / GRAM_RATE + copies * n**3 / SOLVE_RATE + rated * n / SCORE_RATE
    return float(seconds) if seconds.ndim == 0 else seconds


def _free_memory() -> int:
    """Bytes of memory the system could hand out now (Linux's MemAvailable; else unlimited)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62

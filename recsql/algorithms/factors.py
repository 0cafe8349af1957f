"""A fitted model, and everything computed from one: predictions, recommendations
(top-N unrated movies per user) and similar movies.

Every solver only fills a :class:`Factors`; prediction and retrieval live here, once.
The model is

    rating(u, m) = global_mean + user_bias[u] + movie_bias[m] + user_factors[u] . movie_factors[m]

clipped to ``clip``.  It is written out exactly once, as a dot product of two augmented
vectors (:attr:`Factors.user_terms` . :attr:`Factors.movie_terms`), which every
prediction and ranking below uses; the README's SQL query is the same sum over the
stored rows.

Similarity metrics for similar movies:

* ``cosine`` (default): cosine similarity of the feature vectors; larger is more similar.
* ``l1``: the tutorial's "difference score", the sum of absolute feature differences;
  smaller is more similar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from recsql.algorithms import topk
from recsql.algorithms.topk import TopK, top_k_largest
from recsql.errors import InvalidParameter, ModelFitError
from recsql.progress import Step, no_step
from recsql.threads import parallel_blocks

Metric = Literal["l1", "cosine"]
# Scores to order a block of users' movies by, from (user rows, their predicted ratings).
Ranking = Callable[[np.ndarray, np.ndarray], np.ndarray]
METRICS: tuple[str, ...] = ("l1", "cosine")
PREDICT_CHUNK = 500_000  # pairs per step: two 500k x (k + 2) gathers at a time


def check_similarity_params(k: int, metric: str, metrics: tuple[str, ...] = METRICS) -> None:
    """Raise :class:`InvalidParameter` unless ``k`` and ``metric`` (one of ``metrics``) are usable."""
    if metric not in metrics:
        raise InvalidParameter(f"metric must be one of {', '.join(metrics)}, not {metric!r}")
    if k < 1:
        raise InvalidParameter(f"the number of similar movies must be at least 1, not {k}")


@dataclass(frozen=True)
class Factors:
    """A fitted model (see the module docstring for the formula).

    Rows follow the training matrix: ``user_factors[i]`` belongs to ``user_ids[i]``,
    ``movie_factors[j]`` to ``movie_ids[j]`` (both ascending).  Solvers without biases
    leave them None (the tutorial's model is U.M alone).  ``clip`` bounds predictions
    to the rating scale seen in training (None: unbounded, as the tutorial's model is).
    """

    user_ids: np.ndarray
    movie_ids: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    global_mean: float = 0.0
    user_bias: np.ndarray | None = None
    movie_bias: np.ndarray | None = None
    clip: tuple[float, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ the formula

    @cached_property
    def user_terms(self) -> np.ndarray:
        """``[p_u, 1, global_mean + b_u]`` per user row: the user's half of a prediction
        (built once per Factors; every prediction and ranking indexes it)."""
        n = len(self.user_factors)
        return np.hstack([self.user_factors, np.ones((n, 1)), (self.global_mean + self.user_bias_or_zero)[:, None]])

    @cached_property
    def movie_terms(self) -> np.ndarray:
        """``[q_m, b_m, 1]`` per movie column: the movie's half, so that
        ``user_terms[u] . movie_terms[m] = global_mean + b_u + b_m + p_u . q_m``."""
        n = len(self.movie_factors)
        return np.hstack([self.movie_factors, self.movie_bias_or_zero[:, None], np.ones((n, 1))])

    def clipped(self, values: np.ndarray) -> np.ndarray:
        """``values`` bounded to the rating scale (unchanged for an unclipped model)."""
        return np.clip(values, *self.clip) if self.clip is not None else values

    def predict(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user row, movie column) pairs, in float64.

        Works in chunks, so scoring 25 million ratings never gathers 25 million
        feature vectors at once.
        """
        rows, cols = np.asarray(rows), np.asarray(cols)
        users, movies = self.user_terms, self.movie_terms
        pred = np.empty(len(rows))
        for start in range(0, len(rows), PREDICT_CHUNK):
            r, c = rows[start : start + PREDICT_CHUNK], cols[start : start + PREDICT_CHUNK]
            pred[start : start + len(r)] = np.einsum("ij,ij->i", users[r], movies[c])
        return self.clipped(pred)

    # ------------------------------------------------------------------ retrieval

    def recommend(
        self,
        rated: sp.csr_matrix,
        limit: int = 10,
        users: np.ndarray | None = None,
        step: Step = no_step,
        exact: bool = False,
        rank: Ranking | None = None,
    ) -> TopK:
        """For each user row, the ``limit`` movies with the highest predicted rating that
        the user has not rated.

        ``rated`` is a CSR users x movies matrix in this model's index space whose stored
        cells are excluded.  Returns indices and scores of shape
        ``len(users) x min(limit, n_movies)``; a user with fewer unrated movies gets
        ``-1`` indices and ``nan`` scores in the empty slots.  Scores are predictions
        (clipped), computed one block of users at a time as one float32 matrix product
        (float64 with ``exact``, for a handful of users).  ``rank(rows, predictions)``
        turns a block's (unclipped) predictions into other scores to order by, which are
        then the scores returned (see :mod:`recsql.algorithms.ranking`).
        """
        users = np.arange(rated.shape[0]) if users is None else np.asarray(users)
        n_movies = len(self.movie_ids)
        limit = max(0, min(limit, n_movies))
        indices = np.full((len(users), limit), -1, dtype=np.int64)
        scores = np.full((len(users), limit), np.nan)
        if limit == 0 or len(users) == 0:
            return TopK(indices, scores)
        dtype = np.float64 if exact else np.float32
        movie_t = np.ascontiguousarray(self.movie_terms.T, dtype=dtype)
        user_terms = self.user_terms.astype(dtype)
        block = topk.block_rows(n_movies)

        def one_block(start: int) -> None:
            rows = users[start : start + block]
            pred = user_terms[rows] @ movie_t
            if rank is not None:
                pred = rank(rows, pred)
            sub = rated[rows]
            pred[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
            best, value = top_k_largest(pred, limit)
            value = value.astype(np.float64)
            empty = ~np.isfinite(value)
            if rank is None:
                value = self.clipped(value)
            best[empty], value[empty] = -1, np.nan
            indices[start : start + len(rows)] = best
            scores[start : start + len(rows)] = value

        parallel_blocks(range(0, len(users), block), one_block, step)
        return TopK(indices, scores)

    def similar_movies(
        self, k: int = 20, metric: Metric = "cosine", step: Step = no_step, rows: range | None = None
    ) -> TopK:
        """For each movie, its ``k`` most similar other movies (never itself), best first.

        Returns indices and scores of shape ``n_movies x min(k, n_movies - 1)``; scores
        are cosine similarities (descending) or L1 distances (ascending).  ``rows`` lists
        only those movies (against every movie): one block of the Spark backend's lists.
        """
        check_similarity_params(k, metric)
        movie_factors = self.movie_factors
        n = movie_factors.shape[0]
        rows = range(n) if rows is None else rows
        k = max(0, min(k, n - 1))
        indices = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k), dtype=np.float64)
        if k == 0 or len(rows) == 0:
            return TopK(indices, scores)
        if metric == "cosine":
            norms = np.linalg.norm(movie_factors, axis=1, keepdims=True)
            unit = (movie_factors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        else:
            dense = np.asarray(movie_factors, dtype=np.float64)
        block = topk.block_rows(n)

        def one_block(start: int) -> None:
            stop = min(rows.stop, start + block)
            if metric == "l1":
                closeness = -cdist(dense[start:stop], dense, metric="cityblock")
            else:
                closeness = unit[start:stop] @ unit.T
            closeness[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            best, value = top_k_largest(closeness, k)
            at = slice(start - rows.start, stop - rows.start)
            indices[at] = best
            scores[at] = -value if metric == "l1" else value

        parallel_blocks(range(rows.start, rows.stop, block), one_block, step)
        return TopK(indices, scores)

    # ------------------------------------------------------------------ checks, views

    def check_finite(self) -> Factors:
        """Raise :class:`ModelFitError` if the solver diverged; a NaN must never be written."""
        arrays = {"user factors": self.user_factors, "movie factors": self.movie_factors}
        if self.user_bias is not None:
            arrays["user biases"] = self.user_bias
        if self.movie_bias is not None:
            arrays["movie biases"] = self.movie_bias
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise ModelFitError(f"the solver produced non-finite {name}; try a larger --regularization")
        if not np.isfinite(self.global_mean):
            raise ModelFitError("the solver produced a non-finite global mean")
        return self

    def with_users(self, user_ids: np.ndarray, user_factors: np.ndarray, user_bias: np.ndarray) -> Factors:
        """The same movies with other users: how serving scores a stored or folded-in user."""
        return dataclasses.replace(
            self,
            user_ids=np.asarray(user_ids),
            user_factors=np.atleast_2d(user_factors),
            user_bias=np.asarray(user_bias, dtype=np.float64),
        )

    @property
    def movie_bias_or_zero(self) -> np.ndarray:
        """The movie biases, zeros for a model without them."""
        return np.zeros(len(self.movie_factors)) if self.movie_bias is None else self.movie_bias

    @property
    def user_bias_or_zero(self) -> np.ndarray:
        """The user biases, zeros for a model without them."""
        return np.zeros(len(self.user_factors)) if self.user_bias is None else self.user_bias

"""The item model of a catalogue too large to solve exactly: exact on its most-rated
movies, low-rank everywhere else.

A rank-32 eigen-approximation of EASE keeps the catalogue's broad tastes but not its
fine neighbourhoods, and the similar-movie lists are made of neighbourhoods: on
catalogues of 3,700 to 10,000 movies the low-rank lists ranked 0.86-0.89x as well as
exact EASE's.  Almost all choices, though, fall on the most-rated movies.  So the
model is the low-rank B everywhere, corrected on the head x head block to the exact
EASE solution of the head (the largest head the exact budget affords:
:func:`affordable_head`):

    B = B_low + C,  C = B_head - B_low[head, head]  (zero outside head x head)

An exact head column regresses a head movie on the other head movies only; tail
movies, rated rarely, are weak predictors, so it is close to full EASE's column.
Scores stay on one scale, both parts estimating the same B, and C is the only dense
array (head^2 floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.ranking import (
    BLEND,
    DEFAULT_ITEM_REGULARIZATION,
    ItemItem,
    ItemSettings,
    LowRankItemItem,
    ease_weights,
    exact_affordable,
    exact_budget,
    largest_affordable,
    tuning_facts,
)

SMALLEST_HEAD = 500  # below this a head is not worth its solve


@dataclass(frozen=True)
class HeadItemItem(ItemItem):
    """Low-rank B plus the exact head's correction on the head x head block."""

    low: LowRankItemItem
    head: np.ndarray  # movie indices of the head, ascending
    correction: np.ndarray  # head x head, float32: exact head B minus low-rank B there
    regularization: float = DEFAULT_ITEM_REGULARIZATION
    similar_blend: float = BLEND
    settings: ItemSettings | None = None

    @classmethod
    def fit(
        cls,
        low: LowRankItemItem,
        head: np.ndarray,
        gram: np.ndarray,
        similar_blend: float = BLEND,
        settings: ItemSettings | None = None,
    ) -> HeadItemItem:
        """The model from the low-rank one and the head's Gram matrix (X^T X of its columns),
        which is overwritten: it becomes the correction."""
        exact = ease_weights(gram, low.regularization)
        exact -= low.left[head] @ low.right[:, head]  # in place: one head x head buffer
        return cls(low, head, exact, low.regularization, similar_blend, settings)

    @property
    def n_movies(self) -> int:
        return self.low.n_movies

    @cached_property
    def _position(self) -> np.ndarray:
        """Each movie's row in the correction (-1: not in the head)."""
        position = np.full(self.n_movies, -1)
        position[self.head] = np.arange(len(self.head))
        return position

    def weight_rows(self, start: int, stop: int) -> np.ndarray:
        weights = self.low.weight_rows(start, stop)
        position = self._position[start:stop]
        rows = np.flatnonzero(position >= 0)
        head = self.correction[position[rows]]  # a copy: assigned whole, as in choice_scores
        head += self.low.left[start + rows] @ self._right_head
        weights[np.ix_(rows, self.head)] = head
        return weights

    @cached_property
    def _right_head(self) -> np.ndarray:
        """The low-rank model's right factor on the head's columns, contiguous."""
        return np.ascontiguousarray(self.low.right[:, self.head])

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        # The head's columns are computed whole and assigned: a scattered add into
        # them (a gather and a scatter) cost twice the assignment's time.
        picks = rated.astype(np.float32, copy=False)
        projected = np.asarray(picks @ self.low.left)
        scores = projected @ self.low.right
        head = np.asarray(picks[:, self.head] @ self.correction)
        head += projected @ self._right_head
        scores[:, self.head] = head
        return scores

    def facts(self) -> dict[str, Any]:
        low = self.low.facts()
        return {
            **low,
            "item_model": f"exact head of {len(self.head)} + {low['item_model']}",
            **tuning_facts(self.settings),
        }


def affordable_head(rated: sp.csr_matrix, copies: int = 1, grams: int = 1) -> np.ndarray | None:
    """The most-rated movies (ascending indices) of the largest head whose exact model
    fits the exact budget of its ratings (:func:`~recsql.algorithms.ranking.exact_budget`), by
    bisection on its size; None when even SMALLEST_HEAD does not fit.

    Only the Gram's term of the estimate needs each user's count in the head; the
    solves' and the scoring's need only the head's size and its ratings, known for
    every size from the movies' counts at once.  So the bisection starts below the
    largest size those two terms allow, and counts only the ratings of movies under it."""
    by_count = np.argsort(-rated.getnnz(axis=0), kind="stable")
    budget = exact_budget(rated.nnz)
    high = largest_affordable(np.cumsum(rated.getnnz(axis=0)[by_count]), copies, budget)
    rank = np.empty(rated.shape[1], dtype=np.int64)
    rank[by_count] = np.arange(rated.shape[1])
    rating_rank = rank[rated.indices]
    kept = rating_rank < high
    users_of = np.repeat(np.arange(rated.shape[0]), np.diff(rated.indptr))[kept]
    rating_rank = rating_rank[kept]

    def fits(size: int) -> bool:
        counts = np.bincount(users_of[rating_rank < size], minlength=rated.shape[0])
        return exact_affordable(counts, size, copies, grams, budget)

    low = SMALLEST_HEAD
    if low > high or not fits(low):
        return None
    while high - low > max(50, low // 20):  # to 5 %: the estimate is no finer
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return np.sort(by_count[:low])

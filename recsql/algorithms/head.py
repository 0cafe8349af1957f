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
    dense_gram,
    ease_weights,
    exact_affordable,
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
        """The model from the low-rank one and the head's Gram matrix (:func:`head_gram`),
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
        weights[np.ix_(rows, self.head)] += self.correction[position[rows]]
        return weights

    def choice_scores(self, users: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
        scores = self.low.choice_scores(users, rated)
        scores[:, self.head] += np.asarray(rated[:, self.head].astype(np.float32) @ self.correction)
        return scores

    def facts(self) -> dict[str, Any]:
        low = self.low.facts()
        tuning = {"item_tuning": self.settings.tuning()} if self.settings is not None else {}
        return {**low, "item_model": f"exact head of {len(self.head)} + {low['item_model']}", **tuning}


def head_gram(rated: sp.csr_matrix, head: np.ndarray) -> np.ndarray:
    """X^T X of the head's columns (dense float32)."""
    return dense_gram(rated[:, head].tocsr())


def affordable_head(rated: sp.csr_matrix, copies: int = 1) -> np.ndarray | None:
    """The most-rated movies (ascending indices) of the largest head whose exact model
    fits the exact budget (:func:`~recsql.algorithms.ranking.exact_affordable`), by
    bisection on its size; None when even SMALLEST_HEAD does not fit."""
    by_count = np.argsort(-rated.getnnz(axis=0), kind="stable")
    users_of = np.repeat(np.arange(rated.shape[0]), np.diff(rated.indptr))

    def fits(size: int) -> bool:
        head = np.zeros(rated.shape[1], dtype=bool)
        head[by_count[:size]] = True
        counts = np.bincount(users_of[head[rated.indices]], minlength=rated.shape[0])
        return exact_affordable(counts, size, copies)

    low, high = SMALLEST_HEAD, rated.shape[1]
    if not fits(low):
        return None
    while high - low > max(50, low // 20):  # to 5 %: the estimate is no finer
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return np.sort(by_count[:low])

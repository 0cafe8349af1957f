"""What a training run stores besides its factors, computed in memory: similar movies,
recommendations and the popular movies shown to users without ratings.

Pure: :mod:`recsql.store` turns a :class:`ModelOutputs` into table rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsql.data.matrix import RatingMatrix
from recsql.model.factors import Factors
from recsql.model.topk import TopK, top_k_largest

PRIOR_COUNT = 20  # ratings' worth of "average" every movie starts with
POPULAR_KEPT = 200


@dataclass(frozen=True)
class Popularity:
    """The most popular well-rated movies, best first (indices into the model's movies)."""

    movie_index: np.ndarray
    score: np.ndarray  # damped mean
    n_ratings: np.ndarray
    mean_rating: np.ndarray


@dataclass(frozen=True)
class ModelOutputs:
    """Everything a model version stores: its factors and what was computed from them."""

    factors: Factors
    similar: TopK  # n_movies x K, indices into factors.movie_ids
    recommended: TopK  # n_users x N, indices into factors.movie_ids; -1: none
    popular: Popularity
    n_ratings: int


def popularity(matrix: RatingMatrix, n: int = POPULAR_KEPT, prior_count: float = PRIOR_COUNT) -> Popularity:
    """The ``n`` movies with the highest damped mean rating, best first.

    damped mean = (prior_count * overall mean + sum of ratings) / (prior_count + count):
    a movie needs many good ratings to beat the overall mean by much.
    """
    counts = np.bincount(matrix.cols, minlength=matrix.n_movies)
    sums = np.bincount(matrix.cols, weights=matrix.values, minlength=matrix.n_movies)
    overall = float(matrix.values.mean())
    score = (prior_count * overall + sums) / (prior_count + counts)
    best, value = top_k_largest(score[None, :], min(n, matrix.n_movies))
    top = best[0]
    return Popularity(
        movie_index=top,
        score=value[0].astype(np.float64),
        n_ratings=counts[top],
        mean_rating=sums[top] / np.maximum(counts[top], 1),
    )

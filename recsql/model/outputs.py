"""What a training run stores besides its factors, computed in memory: similar movies,
recommendations and the popular movies shown to users without ratings.

Which model orders the lists is ``metric``: ``items`` (the default) ranks both with the
item-item choice model blended with the rating model (:mod:`recsql.model.ranking`);
``cosine`` and ``l1`` (the tutorial's) rank similar movies by the rating model's
feature vectors and recommendations by predicted rating.
Training and evaluation both build their lists here, so what is measured is what is
stored.  Pure: :mod:`recsql.store` turns a :class:`ModelOutputs` into table rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.model.factors import METRICS, Factors, check_similarity_params
from recsql.model.ranking import DEFAULT_ITEM_REGULARIZATION, ItemItem, blend, fit_item_model, rated_by
from recsql.model.topk import TopK, top_k_largest
from recsql.progress import Step, no_step

ListMetric = Literal["items", "cosine", "l1"]
LIST_METRICS: tuple[str, ...] = ("items", *METRICS)

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
class Recommended:
    """Each user's top-N movies: indices into the model's movies (-1: none), the score
    that orders them, and their predicted ratings (NaN where empty)."""

    indices: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class ModelOutputs:
    """Everything a model version stores: its factors and what was computed from them."""

    factors: Factors
    similar: TopK  # n_movies x K, indices into factors.movie_ids
    recommended: Recommended
    popular: Popularity
    n_ratings: int


def check_list_params(k: int, metric: str) -> None:
    """Raise :class:`InvalidParameter` unless ``k`` similar movies by ``metric`` can be listed."""
    if metric not in LIST_METRICS:
        raise InvalidParameter(f"metric must be one of {', '.join(LIST_METRICS)}, not {metric!r}")
    check_similarity_params(k, "cosine")


def item_model(
    matrix: RatingMatrix, metric: str, regularization: float = DEFAULT_ITEM_REGULARIZATION
) -> ItemItem | None:
    """The item-item model the lists use (None for the rating model's metrics)."""
    if metric != "items":
        return None
    return fit_item_model(matrix, regularization)


def similar_lists(
    factors: Factors, items: ItemItem | None, k: int, metric: str, step: Step = no_step
) -> TopK:
    """Each movie's ``k`` most similar movies, by the item model when there is one."""
    if items is not None:
        return items.similar_movies(k, factors.movie_bias_or_zero, step)
    return factors.similar_movies(k, "cosine" if metric == "items" else metric, step)  # type: ignore[arg-type]


def recommendation_lists(
    factors: Factors, items: ItemItem | None, rated: sp.csr_matrix, limit: int, step: Step = no_step
) -> Recommended:
    """Every user's top ``limit`` unrated movies, by the blended item model when there is
    one, else by predicted rating."""
    if items is None:
        top = factors.recommend(rated, limit, step=step)
        return Recommended(top.indices, top.scores, top.scores)
    pattern = rated_by(rated)

    def rank(rows: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        return blend(items.choice_scores(pattern[rows]), factors.clipped(predictions), factors.global_mean)

    top = factors.recommend(rated, limit, step=step, rank=rank)
    filled = top.indices >= 0
    predicted = np.full(top.indices.shape, np.nan)
    users = np.broadcast_to(np.arange(len(top.indices))[:, None], top.indices.shape)
    predicted[filled] = factors.predict(users[filled], top.indices[filled])
    return Recommended(top.indices, top.scores, predicted)


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

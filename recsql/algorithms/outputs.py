"""What a training run stores besides its factors, computed in memory: similar movies,
recommendations and the popular movies shown to users without ratings.

Which model orders the lists is ``metric``: ``items`` (the default) ranks both with the
item-item choice model blended with the rating model (:mod:`recsql.algorithms.ranking`);
``cosine`` and ``l1`` (the tutorial's) rank similar movies by the rating model's
feature vectors and recommendations by predicted rating.
Training and evaluation both build their lists here, so what is measured is what is
stored.  Pure: :mod:`recsql.store` turns a :class:`ModelOutputs` into table rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.factors import METRICS, Factors, Metric, check_similarity_params
from recsql.algorithms.item_tuning import fit_item_model
from recsql.algorithms.ranking import ItemItem, ItemPenalty, blend, rated_by
from recsql.algorithms.topk import TopK, block_rows, top_k_largest
from recsql.data.matrix import RatingMatrix
from recsql.progress import Step, no_step
from recsql.threads import parallel_blocks

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


def relabeled(outputs: ModelOutputs, user_ids: np.ndarray, movie_ids: np.ndarray) -> ModelOutputs:
    """The same model under other ids (``user_ids`` and ``movie_ids`` parallel to its
    own: a database's integers for its keys), rows re-sorted by them, as Factors keeps
    its ids ascending, and every list's indices following their movies."""
    factors = outputs.factors
    users, movies = np.argsort(user_ids, kind="stable"), np.argsort(movie_ids, kind="stable")
    moved = np.empty(len(movies), dtype=np.int64)
    moved[movies] = np.arange(len(movies))  # a movie's new position

    def follow(indices: np.ndarray) -> np.ndarray:
        return np.where(indices >= 0, moved[np.maximum(indices, 0)], -1)

    renamed = Factors(
        user_ids=np.asarray(user_ids)[users],
        movie_ids=np.asarray(movie_ids)[movies],
        user_factors=factors.user_factors[users],
        movie_factors=factors.movie_factors[movies],
        global_mean=factors.global_mean,
        user_bias=None if factors.user_bias is None else factors.user_bias[users],
        movie_bias=None if factors.movie_bias is None else factors.movie_bias[movies],
        clip=factors.clip,
        info=factors.info,
    )
    similar, recommended, popular = outputs.similar, outputs.recommended, outputs.popular
    return ModelOutputs(
        renamed,
        TopK(follow(similar.indices[movies]), similar.scores[movies]),
        Recommended(follow(recommended.indices[users]), recommended.scores[users], recommended.predicted[users]),
        replace(popular, movie_index=moved[popular.movie_index]),
        outputs.n_ratings,
    )


def check_list_params(k: int, metric: str) -> None:
    """Raise :class:`InvalidParameter` unless ``k`` similar movies by ``metric`` can be listed."""
    check_similarity_params(k, metric, LIST_METRICS)


def item_model(matrix: RatingMatrix, metric: str, regularization: ItemPenalty = None, seed: int = 0) -> ItemItem | None:
    """The item-item model the lists use (None for the rating model's metrics);
    ``regularization`` None: its penalties chosen from the data."""
    if metric != "items":
        return None
    return fit_item_model(matrix, regularization, seed)


def similar_lists(
    factors: Factors,
    items: ItemItem | None,
    k: int,
    metric: str,
    step: Step = no_step,
    rows: range | None = None,
) -> TopK:
    """Each movie's ``k`` most similar movies: by the item model (``metric`` items, for
    which :func:`item_model` always fits one), else by the rating model's features.
    ``rows``: only those movies' lists (default all)."""
    if items is not None:
        return items.similar_movies(k, factors.movie_bias_or_zero, step, rows)
    return factors.similar_movies(k, cast(Metric, metric), step, rows)


# The blend re-ranks each user's best picks: computing it for every movie of a large
# catalogue (a rating product and an exp per cell) cost more than the pick model itself.
# On MovieLens 100K, 50 candidates rank exactly as well as blending every movie
# (NDCG@10 0.417 both), and 20 as well as 50 (u1..u5 mean 0.4185 against 0.4178 in one
# run): picking each user's 20 best of 59,047 movies instead of 50 took the top-K
# selection from 15 to about 10 ms per block of 135 users at 25 M ratings.
CANDIDATES = 20


def recommendation_lists(
    factors: Factors, items: ItemItem | None, rated: sp.csr_matrix, limit: int, step: Step = no_step
) -> Recommended:
    """Every user's top ``limit`` unrated movies: by predicted rating without an item
    model; with one, its ``CANDIDATES`` best picks re-ranked by the blend with the
    predicted rating (:func:`recsql.algorithms.ranking.blend`)."""
    if items is None:
        top = factors.recommend(rated, limit, step=step)
        return Recommended(top.indices, top.scores, top.scores)
    n_users, n_movies = rated.shape
    limit = max(0, min(limit, n_movies))
    width = min(n_movies, max(CANDIDATES, limit))
    indices = np.full((n_users, limit), -1, dtype=np.int64)
    scores = np.full((n_users, limit), np.nan)
    predicted = np.full((n_users, limit), np.nan)
    if limit == 0:
        return Recommended(indices, scores, predicted)
    pattern = rated_by(rated)
    block = block_rows(n_movies)

    def one_block(start: int) -> None:
        rows = np.arange(start, min(n_users, start + block))
        picks = pattern[rows]
        choice = items.choice_scores(rows, picks)
        choice[np.repeat(np.arange(len(rows)), np.diff(picks.indptr)), picks.indices] = -np.inf
        candidates, candidate_choice = top_k_largest(choice, width)
        known = np.isfinite(candidate_choice)
        ratings = np.full(candidates.shape, np.nan)
        users = np.broadcast_to(rows[:, None], candidates.shape)
        ratings[known] = factors.predict(users[known], candidates[known])
        blended = np.where(known, blend(candidate_choice, ratings, factors.global_mean), -np.inf)
        order, best = top_k_largest(blended, limit)
        chosen = np.take_along_axis(candidates, order, axis=1)
        kept = np.isfinite(best)
        indices[rows] = np.where(kept, chosen, -1)
        scores[rows] = np.where(kept, best, np.nan)
        predicted[rows] = np.where(kept, np.take_along_axis(ratings, order, axis=1), np.nan)

    parallel_blocks(range(0, n_users, block), one_block, step)
    return Recommended(indices, scores, predicted)


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

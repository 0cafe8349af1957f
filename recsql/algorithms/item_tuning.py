"""The item model's settings chosen per retrain, from the data it is trained on.

The best EASE penalty lambda moves with the catalogue (measured on three real ones:
250, 500 and 1,000), so no constant serves them all.  Each retrain holds back a random
share of its own ratings, fits the exact item model of its most-rated movies for a few
lambdas on the rest (a coarse grid, then halving or doubling toward the peak), and
keeps the lambda whose lists rank the held-back choices best, scored the way lists are
judged (:mod:`recsql.algorithms.quality`):

* recommendations: NDCG@10 of the choice scores x_u B;
* similar movies: NDCG@10 of "because you rated" over top-20 lists of B_ij lifted by
  exp(blend x movie bias), so the similar lists get their own lambda; then, at that
  lambda, their own Gram (:data:`SIMILAR_WEIGHT` against 1 for a rating below
  liked: "liked together" can count more than "rated together") and their lift
  (:data:`LIFTS`).

Relevant, as everywhere in recsql's metrics, is a held-back rating >= 4 (every
held-back rating when the data has none, e.g. implicit 0/1 feedback).  The work is
bounded whatever the catalogue: at most :data:`TUNING_MOVIES` movies (the most rated:
where almost all choices are), :data:`TUNING_USERS` scored users, and the ratings of at
most :data:`GRAM_USERS` users (a sample of f of them: X^T X shrinks by f, and so does
the penalty that regularizes it as much, so lambda is tried as f x lambda).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.head import HeadItemItem, affordable_head
from recsql.algorithms.quality import RELEVANT, because_you_rated_top, top_k_quality
from recsql.algorithms.ranking import (
    BLEND,
    Eigen,
    ExactItemItem,
    ItemItem,
    ItemSettings,
    LowRankItemItem,
    SplitItemItem,
    dense_gram,
    ease_weights,
    exact_affordable,
    exact_budget,
    liked_grams,
    rated_by,
)
from recsql.algorithms.topk import TopK, top_k_largest
from recsql.data.matrix import RatingMatrix

HELD_SHARE = 0.2
TUNING_MOVIES = 1_500
TUNING_USERS = 2_000  # their rows are dense here: at most 2,000 x 1,500 floats
GRAM_USERS = 20_000  # above, a sample of users: ridge penalties scale with the rows they weigh
START = (125.0, 500.0, 2_000.0)  # the first lambdas tried; then x2 or /2 from the best (_search)
BOUNDS = (8.0, 64_000.0)
LIFTS = (0.0, 0.25, 0.5)
SIMILAR_WEIGHT = 0.5  # tried against 1 for a rating below liked in the similar model's Gram
SIMILAR_K = 20
PRIOR = 25.0  # ratings' worth of the mean a movie's bias is damped by


def fit_item_model(matrix: RatingMatrix, regularization: float | ItemSettings | None = None, seed: int = 0) -> ItemItem:
    """The pick model of a rating matrix, exact where affordable and low-rank above;
    its penalties, lift and liked weight chosen from the data unless ``regularization``
    gives them (a penalty for both lists, or settings an earlier fit chose)."""
    tuning: ItemSettings | None  # what the model records as chosen from the data
    if isinstance(regularization, ItemSettings):
        settings = tuning = regularization
    elif regularization is None:
        settings = tuning = choose_item_settings(matrix.csr, seed)
    else:
        settings, tuning = ItemSettings(regularization, regularization, BLEND), None
    rated = rated_by(matrix.csr)
    plan = _plan(rated, settings)
    if not plan.exact and plan.head is None and settings.similar_weight != 1.0:
        # All low-rank, from the 0/1 pattern's eigenpairs: the liked weight has nothing
        # exact to weigh, so the similar lists take the unweighted choice.
        settings = settings.unweighted()
        tuning, plan = (settings if tuning is not None else None), _plan(rated, settings)
    recommend_key, similar_key = _keys(settings)
    keys = sorted({recommend_key, similar_key})
    models = _fit_models(matrix.csr, rated, keys, plan, settings.similar_blend, seed)
    recommend, similar = models[recommend_key], models[similar_key]
    if recommend is similar:
        return replace(recommend, settings=tuning)  # type: ignore[type-var]
    return SplitItemItem(recommend, similar, tuning)


Key = tuple[float, float]  # an item model's (penalty, weight of a rating below liked)


def _keys(settings: ItemSettings) -> tuple[Key, Key]:
    """The recommendations' model and the similar lists' (one model when equal)."""
    return (settings.regularization, 1.0), (settings.similar_regularization, settings.similar_weight)


@dataclass(frozen=True)
class _Plan:
    """Which form the item models take: all exact, or low-rank with an exact head
    (None: low-rank alone)."""

    exact: bool
    head: np.ndarray | None


def _plan(rated: sp.csr_matrix, settings: ItemSettings) -> _Plan:
    """Models: one per distinct key; Grams: one per liked weight among them."""
    keys = set(_keys(settings))
    copies, grams = len(keys), len({weight for _, weight in keys})
    if exact_affordable(np.diff(rated.indptr), rated.shape[1], copies, grams, exact_budget(rated.nnz)):
        return _Plan(True, None)
    return _Plan(False, affordable_head(rated, copies, grams))


def _fit_models(
    ratings: sp.csr_matrix, rated: sp.csr_matrix, keys: list[Key], plan: _Plan, lift: float, seed: int
) -> dict[Key, ItemItem]:
    """One item model per key, each from the Gram of the ratings' pattern with that
    weight for a rating below liked (1: the 0/1 pattern ``rated``): all exact, or
    low-rank (the 0/1 pattern's eigenpairs) corrected exactly on the plan's head.  A
    Gram becomes its last model's weights in place; earlier models take a copy."""
    weights = sorted({weight for _, weight in keys})  # (1,) or (w, 1)
    last = {weight: max(n for n, key in enumerate(keys) if key[1] == weight) for weight in weights}

    def grams_of(x: sp.csr_matrix) -> dict[float, np.ndarray]:
        if len(weights) == 1:
            return {1.0: dense_gram(rated_by(x))}
        plain, weighted = liked_grams(x, weights[0])
        return {1.0: plain, weights[0]: weighted}

    models: dict[Key, ItemItem] = {}
    if plan.exact:
        dense = grams_of(ratings)
        for n, (penalty, weight) in enumerate(keys):
            gram = dense[weight] if n == last[weight] else dense[weight].copy()
            models[penalty, weight] = ExactItemItem(ease_weights(gram, penalty), penalty, lift)
        return models
    eigen, head = Eigen.of(rated, seed=seed), plan.head
    heads = grams_of(ratings[:, head].tocsr()) if head is not None else {}
    for n, (penalty, weight) in enumerate(keys):
        low = LowRankItemItem.of_eigen(eigen, penalty, lift)
        if head is None:
            models[penalty, weight] = low
        else:
            gram = heads[weight] if n == last[weight] else heads[weight].copy()
            models[penalty, weight] = HeadItemItem.fit(low, head, gram, lift)
    return models


@dataclass(frozen=True)
class _Validation:
    """A held-back split of the most-rated movies, ready to score item models on."""

    train: sp.csr_matrix  # 0/1, users x head movies
    ratings: sp.csr_matrix  # the same cells holding their ratings
    users: np.ndarray  # scored rows of train
    relevant: sp.csr_matrix  # one row per scored user
    bias: np.ndarray  # damped movie bias on the training share
    share: float  # of the users: a penalty lambda for all of them is lambda x share here


def choose_item_settings(ratings: sp.csr_matrix, seed: int = 0) -> ItemSettings:
    """Penalties, lift and liked weight for the item model of the users x movies
    ``ratings``; the defaults when too little is held back to tell lambdas apart."""
    validation = _validation(ratings, seed)
    if validation is None:
        return ItemSettings()
    liked = validation.ratings.data >= RELEVANT
    liked_gram: np.ndarray | None = None
    if liked.any() and not liked.all():  # else every rating weighs the same
        gram, liked_gram = liked_grams(validation.ratings, SIMILAR_WEIGHT)
    else:
        gram = dense_gram(validation.train)
    weights: dict[float, np.ndarray] = {}
    recommend: dict[float, float] = {}
    similar: dict[float, float] = {}

    def weights_at(penalty: float) -> np.ndarray:
        if penalty not in weights:  # at most TUNING_MOVIES^2 floats each, a handful of them
            weights[penalty] = ease_weights(gram.copy(), penalty * validation.share)
        return weights[penalty]

    def measure_recommend(penalty: float) -> None:
        if penalty not in recommend:
            recommend[penalty] = _recommend_ndcg(validation, weights_at(penalty))

    def measure_similar(penalty: float) -> None:  # unweighted, at the default lift: both chosen last
        if penalty not in similar:
            similar[penalty] = _similar_ndcg(validation, weights_at(penalty), BLEND)

    _search(measure_recommend, lambda: recommend)
    _search(measure_similar, lambda: similar)
    best = max(recommend, key=recommend.__getitem__)
    best_similar = max(similar, key=similar.__getitem__)
    models = {1.0: weights_at(best_similar)}
    if liked_gram is not None:
        models[SIMILAR_WEIGHT] = ease_weights(liked_gram, best_similar * validation.share)
    chosen = _weight_and_lift(validation, models, similar[best_similar])
    lifts: dict[float, float] = {}
    for (lift, weight), ndcg in chosen.items():  # each weight's best lift
        if weight not in lifts or ndcg > chosen[lifts[weight], weight]:
            lifts[weight] = lift
    by_weight = {w: chosen[lift, w] for w, lift in lifts.items()}
    weight = max(by_weight, key=by_weight.__getitem__)
    similar[best_similar] = by_weight[weight]
    return ItemSettings(best, best_similar, lifts[weight], weight, recommend, similar, by_weight, lifts)


def _weight_and_lift(
    validation: _Validation, models: dict[float, np.ndarray], unweighted: float
) -> dict[tuple[float, float], float]:
    """The similar lists' validation NDCG@10 for each (lift, liked weight): ``models``
    are the similar weights B by liked weight, ``unweighted`` the score already known at
    (BLEND, 1).  Chosen together because both reward well-liked movies: on MovieLens
    100K the weighted Gram won at lift 0 or 0.25 and lost at BLEND."""
    chosen = {(BLEND, 1.0): unweighted}
    for weight, model in models.items():
        for lift in LIFTS:
            if (lift, weight) not in chosen:
                chosen[lift, weight] = _similar_ndcg(validation, model, lift)
    return chosen


def _search(measure: Callable[[float], None], scores: Callable[[], dict[float, float]]) -> None:
    """Try START, then step by halves or doubles from the best toward its better tried
    neighbour (outward at an edge of what was tried) until that step was tried already
    or leaves BOUNDS.  NDCG over lambda is single-peaked in practice, so the peak lies
    between the best and its better neighbour: one more fit per list after START
    where searching both sides cost two."""
    for penalty in START:
        measure(penalty)
    while True:
        found = scores()
        best = max(found, key=found.__getitem__)
        below, above = [p for p in found if p < best], [p for p in found if p > best]
        if not below or not above:
            step = best / 2 if not below else best * 2
        else:
            step = best / 2 if found[max(below)] > found[min(above)] else best * 2
        if step in found or not BOUNDS[0] <= step <= BOUNDS[1]:
            return
        measure(step)


def _validation(ratings: sp.csr_matrix, seed: int) -> _Validation | None:
    rng = np.random.default_rng(seed)
    share = 1.0
    if ratings.shape[0] > GRAM_USERS:  # a sample of users: the Gram, and so lambda, shrink by its share
        sample = np.sort(rng.choice(ratings.shape[0], GRAM_USERS, replace=False))
        ratings, share = ratings[sample], GRAM_USERS / ratings.shape[0]
    held = rng.random(ratings.nnz) < HELD_SHARE
    coo = ratings.tocoo()
    shape = ratings.shape
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=shape)
    counts = np.bincount(train.indices, minlength=shape[1])
    head = np.sort(np.argsort(-counts, kind="stable")[: min(TUNING_MOVIES, int((counts > 0).sum()))])
    if len(head) < 2 * SIMILAR_K:
        return None
    position = np.full(shape[1], -1)
    position[head] = np.arange(len(head))
    values = coo.data[held]
    relevant = values >= RELEVANT if (values >= RELEVANT).any() else np.ones(len(values), dtype=bool)
    rows, cols = coo.row[held][relevant], position[coo.col[held][relevant]]
    keep = cols >= 0
    relevant_matrix = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(shape[0], len(head)))
    relevant_matrix.sum_duplicates()
    head_train = train[:, head].tocsr()
    train_head = rated_by(head_train)
    users = np.flatnonzero((np.diff(relevant_matrix.indptr) > 0) & (np.diff(train_head.indptr) > 0))
    if len(users) < 20:
        return None
    if len(users) > TUNING_USERS:
        users = np.sort(rng.choice(users, TUNING_USERS, replace=False))
    sums, n = np.asarray(head_train.sum(axis=0)).ravel(), head_train.getnnz(axis=0)
    mean = float(train.data.mean())
    bias = (sums - n * mean) / (n + PRIOR)
    return _Validation(train_head, head_train, users, relevant_matrix[users], bias, share)


def _recommend_ndcg(validation: _Validation, weights: np.ndarray) -> float:
    """NDCG@10 of choice scores blended as the stored lists are, the movie's damped
    bias standing in for the predicted rating (a user's own bias does not reorder)."""
    rated = validation.train[validation.users]
    scores = (rated.toarray() @ weights) * np.exp(BLEND * validation.bias).astype(np.float32)[None, :]
    scores[np.repeat(np.arange(rated.shape[0]), np.diff(rated.indptr)), rated.indices] = -np.inf
    return top_k_quality(top_k_largest(scores, 10).indices, validation.relevant)["ndcg_at_10"]


def _similar_ndcg(validation: _Validation, weights: np.ndarray, lift: float) -> float:
    """ "Because you rated" NDCG@10 of top-20 lists of B_ij lifted by exp(lift * b_j)."""
    lifted = weights * np.exp(lift * validation.bias)[None, :]
    np.fill_diagonal(lifted, -np.inf)
    lists = TopK(*top_k_largest(lifted, SIMILAR_K))
    top = because_you_rated_top(lists, validation.train[validation.users])
    return top_k_quality(top, validation.relevant)["ndcg_at_10"]

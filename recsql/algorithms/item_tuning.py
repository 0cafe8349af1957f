"""The item model's settings chosen per retrain, from the data it is trained on.

The best EASE penalty lambda moves with the catalogue (measured on three real ones:
250, 500 and 1,000), so no constant serves them all.  Each retrain holds back a random
share of its own ratings, fits the exact item model of its most-rated movies for a few
lambdas on the rest (a coarse grid, then halving and doubling around the best), and
keeps the lambda whose lists rank the held-back choices best, scored the way lists are
judged (:mod:`recsql.algorithms.quality`):

* recommendations: NDCG@10 of the choice scores x_u B;
* similar movies: NDCG@10 of "because you rated" over top-20 lists of B_ij lifted by
  exp(blend x movie bias), for each lift in :data:`LIFTS`, so the similar lists get
  their own lambda and lift rather than the recommendations'.

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

from recsql.algorithms.head import HeadItemItem, affordable_head, head_gram
from recsql.algorithms.quality import because_you_rated_top, top_k_quality
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
    rated_by,
)
from recsql.algorithms.topk import TopK, top_k_largest
from recsql.data.matrix import RatingMatrix

HELD_SHARE = 0.2
TUNING_MOVIES = 1_500
TUNING_USERS = 2_000  # their rows are dense here: at most 2,000 x 1,500 floats
GRAM_USERS = 20_000  # above, a sample of users: ridge penalties scale with the rows they weigh
RELEVANT = 4.0
START = (125.0, 500.0, 2_000.0)  # the first lambdas tried; then x2 / /2 around the best
BOUNDS = (8.0, 64_000.0)
LIFTS = (0.0, 0.25, 0.5)
SIMILAR_K = 20
PRIOR = 25.0  # ratings' worth of the mean a movie's bias is damped by


def fit_item_model(matrix: RatingMatrix, regularization: float | ItemSettings | None = None, seed: int = 0) -> ItemItem:
    """The pick model of a rating matrix, exact where affordable and low-rank above;
    its penalties and lift chosen from the data unless ``regularization`` gives them
    (a penalty for both lists, or settings an earlier fit chose)."""
    tuning: ItemSettings | None  # what the model records as chosen from the data
    if isinstance(regularization, ItemSettings):
        settings = tuning = regularization
    elif regularization is None:
        settings = tuning = choose_item_settings(matrix.csr, seed)
    else:
        settings, tuning = ItemSettings(regularization, regularization, BLEND), None
    rated = rated_by(matrix.csr)
    penalties = sorted({settings.regularization, settings.similar_regularization})
    copies, lift = len(penalties), settings.similar_blend
    models: dict[float, ItemItem] = {}
    if exact_affordable(np.diff(rated.indptr), rated.shape[1], copies):
        gram = dense_gram(rated)
        for n, penalty in enumerate(penalties):
            weights = ease_weights(gram if n == copies - 1 else gram.copy(), penalty)
            models[penalty] = ExactItemItem(weights, penalty, lift)
    else:
        eigen, head = Eigen.of(rated, seed=seed), affordable_head(rated, copies)
        shared = head_gram(rated, head) if head is not None else None
        for n, penalty in enumerate(penalties):
            low = LowRankItemItem.of_eigen(eigen, penalty, lift)
            if head is None or shared is None:
                models[penalty] = low
            else:
                models[penalty] = HeadItemItem.fit(low, head, shared if n == copies - 1 else shared.copy(), lift)
    recommend, similar = models[settings.regularization], models[settings.similar_regularization]
    if recommend is similar:
        return replace(recommend, settings=tuning)  # type: ignore[type-var]
    return SplitItemItem(recommend, similar, tuning)


@dataclass(frozen=True)
class _Validation:
    """A held-back split of the most-rated movies, ready to score item models on."""

    train: sp.csr_matrix  # 0/1, users x head movies
    users: np.ndarray  # scored rows of train
    relevant: sp.csr_matrix  # one row per scored user
    bias: np.ndarray  # damped movie bias on the training share
    share: float  # of the users: a penalty lambda for all of them is lambda x share here


def choose_item_settings(ratings: sp.csr_matrix, seed: int = 0) -> ItemSettings:
    """Penalties and lift for the item model of the users x movies ``ratings``; the
    defaults when too little is held back to tell lambdas apart."""
    validation = _validation(ratings, seed)
    if validation is None:
        return ItemSettings()
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

    def measure_similar(penalty: float) -> None:  # at the default lift; the lift is chosen last
        if penalty not in similar:
            similar[penalty] = _similar_ndcg(validation, weights_at(penalty), BLEND)

    _search(measure_recommend, lambda: recommend)
    _search(measure_similar, lambda: similar)
    best = max(recommend, key=recommend.__getitem__)
    best_similar = max(similar, key=similar.__getitem__)
    lifted = weights_at(best_similar)
    similar[best_similar], lift = max((_similar_ndcg(validation, lifted, lift), lift) for lift in LIFTS)
    return ItemSettings(best, best_similar, lift, recommend, similar)


def _search(measure: Callable[[float], None], scores: Callable[[], dict[float, float]]) -> None:
    """Try START, then halve or double around the best until a neighbour on each side
    scores lower (or a bound is reached)."""
    for penalty in START:
        measure(penalty)
    while True:
        found = scores()
        best = max(found, key=found.__getitem__)
        untried = [p for p in (best / 2, best * 2) if BOUNDS[0] <= p <= BOUNDS[1] and p not in found]
        if not untried:
            return
        for penalty in untried:
            measure(penalty)


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
    return _Validation(train_head, users, relevant_matrix[users], bias, share)


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

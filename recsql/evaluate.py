"""Splits and accuracy metrics, computed from Factors.

RMSE here is the tutorial's: the root mean squared error over the known cells of a
(pivoted, de-duplicated) rating matrix.  Ranking metrics rank the whole catalogue for
each test user, leaving out the movies that user rated in training, and count a test
rating >= 4 as relevant (see :func:`ranking`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsql.errors import InvalidParameter
from recsql.factorize.base import Factors
from recsql.matrix import RatingMatrix, lookup_ids
from recsql.neighbors import top_n_unrated


@dataclass(frozen=True)
class Score:
    """Accuracy on one set of ratings; ``skipped`` counts ratings of users or movies
    the model has never seen (they cannot be predicted from factors)."""

    rmse: float
    mae: float
    n: int
    skipped: int = 0


def score(factors: Factors, ratings: RatingMatrix) -> Score:
    """RMSE and MAE of ``factors`` on the known cells of ``ratings``, mapped by external id."""
    user_ids, movie_ids, values = ratings.triples()
    rows, known_users = lookup_ids(factors.user_ids, user_ids)
    cols, known_movies = lookup_ids(factors.movie_ids, movie_ids)
    known = known_users & known_movies
    if not known.any():
        return Score(rmse=float("nan"), mae=float("nan"), n=0, skipped=int(len(values)))
    errors = factors.predict(rows[known], cols[known]) - values[known]
    return Score(
        rmse=float(np.sqrt(np.mean(errors**2))),
        mae=float(np.mean(np.abs(errors))),
        n=int(known.sum()),
        skipped=int((~known).sum()),
    )


def split_random(
    ratings: RatingMatrix, test_fraction: float, seed: int = 0
) -> tuple[RatingMatrix, RatingMatrix]:
    """Hold out ``test_fraction`` of the known cells at random (reproducible by ``seed``)."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameter("test_fraction must be between 0 and 1 (exclusive)")
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * ratings.nnz))
    if n_test == 0 or n_test == ratings.nnz:
        raise InvalidParameter(
            f"a test fraction of {test_fraction} of {ratings.nnz} ratings leaves "
            "an empty training or test set"
        )
    test = np.zeros(ratings.nnz, dtype=bool)
    test[rng.choice(ratings.nnz, size=n_test, replace=False)] = True
    return ratings.subset(~test), ratings.subset(test)


def split_folds(ratings: RatingMatrix, folds: int, seed: int = 0) -> list[tuple[RatingMatrix, RatingMatrix]]:
    """K-fold cross-validation: each known cell is in exactly one test fold."""
    if not 2 <= folds <= ratings.nnz:
        raise InvalidParameter(f"folds must be between 2 and the number of ratings, not {folds}")
    order = np.random.default_rng(seed).permutation(ratings.nnz)
    fold_of = np.empty(ratings.nnz, dtype=np.int64)
    fold_of[order] = np.arange(ratings.nnz) % folds
    return [(ratings.subset(fold_of != f), ratings.subset(fold_of == f)) for f in range(folds)]


RELEVANT = 4.0


def ranking(factors: Factors, train: RatingMatrix, test: RatingMatrix, k: int = 10) -> dict[str, float]:
    """precision@k, recall@k and NDCG@k over test users with a relevant test rating.

    For each such user the model ranks every movie it knows that the user did not rate in
    training; relevant = a test rating >= 4 of a movie the model knows.
    """
    user_ids, movie_ids, values = test.triples()
    rows, known_u = lookup_ids(factors.user_ids, user_ids)
    cols, known_m = lookup_ids(factors.movie_ids, movie_ids)
    keep = known_u & known_m & (values >= RELEVANT)
    rows, cols = rows[keep], cols[keep]
    users = np.unique(rows)
    if len(users) == 0:
        return {f"precision_at_{k}": float("nan"), f"recall_at_{k}": float("nan"), f"ndcg_at_{k}": float("nan"), "ranked_users": 0}
    t_rows, _ = lookup_ids(factors.user_ids, train.user_ids[train.rows])
    t_cols, _ = lookup_ids(factors.movie_ids, train.movie_ids[train.cols])
    rated = sp.csr_matrix(
        (np.ones(len(t_rows)), (t_rows, t_cols)), shape=(len(factors.user_ids), len(factors.movie_ids))
    )
    top, _ = top_n_unrated(factors, rated, k, users)
    relevant = sp.csr_matrix(
        (np.ones(len(rows)), (np.searchsorted(users, rows), cols)), shape=(len(users), len(factors.movie_ids))
    )
    relevant.sum_duplicates()
    valid = top >= 0
    hits = np.zeros(top.shape)
    hits[valid] = np.asarray(relevant[np.nonzero(valid)[0], top[valid]]).ravel()
    n_relevant = np.diff(relevant.indptr)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, top.shape[1]) - 1]
    return {
        f"precision_at_{k}": float(np.mean(hits.sum(axis=1) / k)),
        f"recall_at_{k}": float(np.mean(hits.sum(axis=1) / n_relevant)),
        f"ndcg_at_{k}": float(np.mean((hits * discounts).sum(axis=1) / ideal)),
        "ranked_users": int(len(users)),
    }

"""Accuracy and ranking metrics of a fitted model on held-out ratings.

RMSE here is the tutorial's: the root mean squared error over the known cells of a
(pivoted, de-duplicated) rating matrix.  Ranking metrics rank the whole catalogue for
each test user, leaving out the movies that user rated in training, and count a test
rating >= 4 as relevant (see :func:`ranking`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.model.factors import Factors


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
        nan = float("nan")
        return {f"precision_at_{k}": nan, f"recall_at_{k}": nan, f"ndcg_at_{k}": nan, "ranked_users": 0}
    t_rows, _ = lookup_ids(factors.user_ids, train.user_ids[train.rows])
    t_cols, _ = lookup_ids(factors.movie_ids, train.movie_ids[train.cols])
    rated = sp.csr_matrix(
        (np.ones(len(t_rows)), (t_rows, t_cols)), shape=(len(factors.user_ids), len(factors.movie_ids))
    )
    top, _ = factors.recommend(rated, k, users)
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


def accuracy_metrics(factors: Factors, train: RatingMatrix, test: RatingMatrix | None) -> dict[str, float]:
    """Train and test RMSE/MAE, and ranking quality on the test set (the names stored in
    ``models.metrics``)."""
    fitted = score(factors, train)
    result: dict[str, float] = {"train_rmse": fitted.rmse, "train_mae": fitted.mae, "n_train": fitted.n}
    if test is not None:
        held_out = score(factors, test)
        result.update(
            test_rmse=held_out.rmse, test_mae=held_out.mae,
            n_test=held_out.n, n_test_skipped=held_out.skipped,
        )
        result.update(ranking(factors, train, test))
    return result

"""Splits and accuracy metrics, computed from Factors on the known cells only.

RMSE here is the tutorial's: the root mean squared error over the known cells of a
(pivoted, de-duplicated) rating matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsql.errors import InvalidParameter
from recsql.factorize.base import Factors
from recsql.matrix import RatingMatrix, lookup_ids


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

"""Accuracy and ranking metrics of a fitted model on held-out ratings.

RMSE here is the tutorial's: the root mean squared error over the known cells of a
(pivoted, de-duplicated) rating matrix.  Ranking metrics rank the whole catalogue for
each test user, leaving out the movies that user rated in training, and count a test
rating >= 4 as relevant (see :func:`list_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.factors import Factors
from recsql.algorithms.quality import RELEVANT, because_you_rated_top, top_k_quality
from recsql.algorithms.topk import TopK
from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.evaluation.beyond import beyond_accuracy
from recsql.progress import Step, no_step


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
    return _score_triples(factors, *ratings.triples())


def _score_triples(factors: Factors, user_ids: np.ndarray, movie_ids: np.ndarray, values: np.ndarray) -> Score:
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


@dataclass(frozen=True)
class HeldOut:
    """The test side of a ranking evaluation, in a model's index space.

    ``users`` are the rows of the test users with at least one relevant rating (a test
    rating >= 4 of a movie the model knows), ascending; ``relevant`` marks their relevant
    movies (one row per user); ``rated`` holds every user's training cells, which
    rankings leave out.
    """

    users: np.ndarray
    relevant: sp.csr_matrix
    rated: sp.csr_matrix

    @classmethod
    def of(cls, user_ids: np.ndarray, movie_ids: np.ndarray, train: RatingMatrix, test: RatingMatrix) -> HeldOut:
        """Map ``train`` and ``test`` onto a model's ``user_ids`` x ``movie_ids``."""
        shape = (len(user_ids), len(movie_ids))
        t_users, t_movies, values = test.triples()
        rows, known_u = lookup_ids(user_ids, t_users)
        cols, known_m = lookup_ids(movie_ids, t_movies)
        keep = known_u & known_m & (values >= RELEVANT)
        rows, cols = rows[keep], cols[keep]
        users = np.unique(rows)
        positions = np.searchsorted(users, rows)
        relevant = sp.csr_matrix((np.ones(len(rows)), (positions, cols)), shape=(len(users), shape[1]))
        relevant.sum_duplicates()
        relevant.data[:] = 1.0
        r_users, r_movies, _ = train.triples()
        t_rows, known_u = lookup_ids(user_ids, r_users)
        t_cols, known_m = lookup_ids(movie_ids, r_movies)
        keep = known_u & known_m
        rated = sp.csr_matrix((np.ones(int(keep.sum())), (t_rows[keep], t_cols[keep])), shape=shape)
        rated.sum_duplicates()
        return cls(users, relevant, rated)


def because_you_rated(
    similar: TopK, held: HeldOut, *, larger_is_similar: bool = True, k: int = 10, step: Step = no_step
) -> float:
    """NDCG@k of stored similar-movie lists used as an application uses them.

    "Because you rated X": each movie a user rated in training lends every movie on its
    stored list that list's similarity score, a movie's score is the sum of what it
    gets, and the user's unrated movies are ranked by it (only movies on some list can
    score).  Relevance as in :func:`ranking`.  Distances (``larger_is_similar=False``,
    the tutorial's L1) lend 1 / (1 + distance).
    """
    if len(held.users) == 0:
        return float("nan")
    weights = similar.scores if larger_is_similar else 1.0 / (1.0 + similar.scores)
    top = because_you_rated_top(similar, held.rated[held.users], k, weights, step)
    return top_k_quality(top, held.relevant, k)[f"ndcg_at_{k}"]


# Above this many training ratings, train RMSE/MAE are computed on a fixed random sample
# of this size (its standard error is far below the digits shown): at 25 M ratings
# scoring every one took 8 s of a retrain.
TRAIN_SAMPLE = 1_000_000


def accuracy_metrics(
    factors: Factors, train: RatingMatrix, test: RatingMatrix | None, train_sample: int = TRAIN_SAMPLE
) -> dict[str, float]:
    """Train and test RMSE/MAE of the rating model (the names stored in ``models.metrics``).

    Above ``train_sample`` training ratings the train figures come from a seeded sample of that many; ``n_train`` says
    how many were scored and ``train_sampled`` whether it was a sample.
    """
    if train.nnz > train_sample:
        cells = np.random.default_rng(0).integers(0, train.nnz, train_sample)  # with replacement
        fitted = _score_triples(
            factors, train.user_ids[train.rows[cells]], train.movie_ids[train.cols[cells]], train.values[cells]
        )
    else:
        fitted = score(factors, train)
    result: dict[str, float] = {
        "train_rmse": fitted.rmse,
        "train_mae": fitted.mae,
        "n_train": fitted.n,
        "train_sampled": train.nnz > train_sample,
    }
    if test is not None:
        held_out = score(factors, test)
        result.update(
            test_rmse=held_out.rmse,
            test_mae=held_out.mae,
            n_test=held_out.n,
            n_test_skipped=held_out.skipped,
        )
    return result


def list_metrics(
    factors: Factors,
    train: RatingMatrix,
    test: RatingMatrix | None,
    similar: TopK,
    recommended: np.ndarray,
    *,
    larger_is_similar: bool = True,
    k: int = 10,
) -> dict[str, float]:
    """How the lists an application shows do.

    ``recommended`` holds every training user's list (movie indices, best first, -1
    where empty), as stored.  Always: coverage, popularity lift, Gini, novelty and
    intra-list diversity (:mod:`recsql.evaluation.beyond`).  With a test set:
    precision, recall and NDCG@k of each test user's list (relevant = a test rating >=
    4; the lists leave out training movies), and the "because you rated" NDCG@k of the
    similar-movie lists (:func:`because_you_rated`).
    """
    ratings_per_movie = np.bincount(train.cols, minlength=train.n_movies)
    result: dict[str, float] = beyond_accuracy(recommended, ratings_per_movie, train.n_users, factors.movie_factors)
    if test is None:
        return result
    held = HeldOut.of(factors.user_ids, factors.movie_ids, train, test)
    if len(held.users) == 0:
        nan = float("nan")
        result.update({f"precision_at_{k}": nan, f"recall_at_{k}": nan, f"ndcg_at_{k}": nan, "ranked_users": 0})
    else:
        top = np.full((len(held.users), k), -1, dtype=np.int64)
        width = min(k, recommended.shape[1])
        top[:, :width] = recommended[held.users, :width]
        result.update({**top_k_quality(top, held.relevant, k), "ranked_users": int(len(held.users))})
    result[f"similar_ndcg_at_{k}"] = because_you_rated(similar, held, larger_is_similar=larger_is_similar, k=k)
    return result

"""A model fitted in memory, for a notebook: ``recsql.fit`` on a DataFrame, then
predictions, recommendations and similar movies as DataFrames, with no database.

It takes the same steps as ``recsql train`` (:mod:`recsql.evaluation.run`: the rating
model, the item model, the lists) on the same options, so a model fitted here from the
ratings a database holds is the model a retrain of that database stores.

    import recsql
    model = recsql.fit(ratings)                    # user_id, movie_id, value (or rating)
    model.predict([1, 2], [50, 99999])             # unknown ids: the mean, known=False
    model.recommend([1, 2], n=5)
    model.similar([50], k=5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsql.data.frames import frame_matrix, integer_ids
from recsql.data.matrix import lookup_ids
from recsql.errors import InvalidParameter
from recsql.evaluation.run import Fitted, Listed, Lists, listed
from recsql.evaluation.run import fit as fit_steps
from recsql.options import FitOptions
from recsql.progress import Phases
from recsql.threads import using_threads

RECOMMEND_N = 10  # recommendations kept per user, as `recsql train` stores them


@dataclass(frozen=True)
class Model:
    """A fit and the lists ``recsql train`` would store from it, in memory."""

    fitted: Fitted
    lists: Listed
    options: FitOptions

    @property
    def user_ids(self) -> np.ndarray:
        return self.fitted.matrix.user_ids

    @property
    def movie_ids(self) -> np.ndarray:
        return self.fitted.matrix.movie_ids

    def predict(self, users: Any, movies: Any) -> pd.DataFrame:
        """Predicted ratings of (user, movie) pairs, one row each, in order.  A pair with
        an id the model has not seen gets the ratings' mean and ``known`` False."""
        user_ids, movie_ids = integer_ids(users, "users"), integer_ids(movies, "movies")
        if len(user_ids) != len(movie_ids):
            raise InvalidParameter(f"{len(user_ids)} users but {len(movie_ids)} movies: give one of each per pair")
        rows, known_user = lookup_ids(self.user_ids, user_ids)
        cols, known_movie = lookup_ids(self.movie_ids, movie_ids)
        known = known_user & known_movie
        factors = self.fitted.clipped
        predicted = np.full(len(user_ids), factors.global_mean, dtype=np.float64)
        predicted[known] = factors.predict(rows[known], cols[known])
        return pd.DataFrame({"user_id": user_ids, "movie_id": movie_ids, "predicted_rating": predicted, "known": known})

    def recommend(self, users: Any, n: int = RECOMMEND_N) -> pd.DataFrame:
        """Each known user's stored top ``n`` (at most RECOMMEND_N): user_id, rank (1 =
        best), movie_id, the score that orders them and the predicted rating."""
        if not 1 <= n <= RECOMMEND_N:
            raise InvalidParameter(f"n must be between 1 and {RECOMMEND_N}, not {n}")
        rows, known = lookup_ids(self.user_ids, integer_ids(users, "users"))
        rows = rows[known]
        recommended = self.lists.recommended
        picks = recommended.indices[rows, :n]  # fewer columns when the catalogue is smaller
        filled = picks >= 0
        user_rows = np.broadcast_to(rows[:, None], picks.shape)[filled]
        return pd.DataFrame(
            {
                "user_id": self.user_ids[user_rows],
                "rank": np.broadcast_to(np.arange(1, picks.shape[1] + 1), picks.shape)[filled],
                "movie_id": self.movie_ids[picks[filled]],
                "score": recommended.scores[rows, :n][filled],
                "predicted_rating": recommended.predicted[rows, :n][filled],
            }
        )

    def similar(self, movies: Any, k: int | None = None) -> pd.DataFrame:
        """Each known movie's ``k`` (default all stored) most similar movies: movie_id,
        rank (1 = most similar), similar_movie_id and score."""
        similar = self.lists.similar
        k = similar.indices.shape[1] if k is None else k
        if not 1 <= k <= similar.indices.shape[1]:
            raise InvalidParameter(f"k must be between 1 and {similar.indices.shape[1]}, not {k}")
        rows, known = lookup_ids(self.movie_ids, integer_ids(movies, "movies"))
        rows = rows[known]
        return pd.DataFrame(
            {
                "movie_id": np.repeat(self.movie_ids[rows], k),
                "rank": np.tile(np.arange(1, k + 1), len(rows)),
                "similar_movie_id": self.movie_ids[similar.indices[rows, :k]].ravel(),
                "score": similar.scores[rows, :k].ravel(),
            }
        )


def fit(
    ratings: pd.DataFrame,
    options: FitOptions | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    **given: Any,
) -> Model:
    """Fit recsql's model and lists to a DataFrame of ratings (integer ids), in memory.

    ``columns`` names the frame's user, movie and rating columns as ``--columns`` does
    (``{"user": "userId", "movie": "movieId", "rating": "rating"}``; default
    user_id, movie_id and value, or rating); ``given``: :class:`FitOptions` by name,
    over ``options``, with the defaults ``recsql train`` uses."""
    options = FitOptions.given(options, given)
    backend = options.backend_of()
    matrix = frame_matrix(ratings, columns, options.duplicates)
    lists = Lists(options.similar_k, options.metric, options.item_regularization, RECOMMEND_N)
    with using_threads(options.threads), backend.session(None) as compute:
        phase = Phases()
        fitted = fit_steps(compute, matrix, None, lists, phase, backend.steps())
        return Model(fitted, listed(compute, fitted, lists, phase), options)


__all__ = ["Model", "fit"]

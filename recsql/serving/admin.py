"""The admin's reader: the ratings and catalogue entries behind any model version.

``recsql inspect`` and ``recsql models diff`` (:mod:`recsql.inspection`,
:mod:`recsql.compare`) need what a web request never does: every rating of a movie, a
user's ratings as a model other than the active one read them, recsql's id of an
application's key, titles of any movies.  :class:`AdminReader` answers these on the
same connections, namespaces and key resolution as the application's
:class:`~recsql.serving.recommender.Recommender` (both build on
:class:`~recsql.serving.reader.Reader`), so the application's API stays what a web
request needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from recsql.serving.answers import MovieInfo
from recsql.serving.reader import Reader
from recsql.serving.translate import database_errors
from recsql.store import catalogue


class AdminReader(Reader):
    """Ratings, ids and titles for the admin's views, of any model version."""

    @database_errors
    def movie(self, movie_id: int | str) -> MovieInfo:
        """The catalogue entry of a movie (title and genres may be unknown: None)."""
        return self._movie_info(movie_id)

    @database_errors
    def user_ratings(self, user_id: int | str, model_id: int | None = None) -> dict[int, float]:
        """The user's ratings (movie id -> rating, the highest of repeated ones) from where
        model ``model_id`` (default: the active one) read its ratings."""
        user = self._known_user(user_id)
        return self._ratings_of(user, self._source_of(model_id))

    @database_errors
    def movie_ratings(self, movie_id: int | str, model_id: int | None = None) -> list[float]:
        """Every rating of the movie (repeated ones included) from where model
        ``model_id`` (default: the active one) read its ratings."""
        movie = self._movie_id(movie_id)
        source = self._source_of(model_id)
        if source is None:
            with self._connection() as conn:
                return catalogue.movie_ratings(conn, movie)
        return [float(value) for _, _, value in self._source_rows(source, "movie", movie)]

    @database_errors
    def user_id(self, user_id: int | str) -> int:
        """recsql's integer id of a user: the id itself, or the one of an application's
        key (UnknownUser for a key the catalogue lacks)."""
        return self._known_user(user_id)

    @database_errors
    def titles(self, movie_ids: Iterable[int]) -> dict[int, MovieInfo]:
        """The catalogue entries of those movies the catalogue (or the key map) has."""
        found = self._titles(np.asarray(list(movie_ids), dtype=np.int64))
        return {movie: MovieInfo(movie, title, genres, key) for movie, (title, genres, key) in found.items()}

"""What serving reads of the active model through the views: the precomputed answers.

Every lookup here is one indexed query on a view (``similar_movies``,
``recommended_movies``, ``popular_movies``) or on the active model's bias rows, whatever
the number of ids: a web request's latency is one round trip.  The statements are built
once, at import.  Rows come back as the driver gives them (attribute access by column
name); :mod:`recsql.serving` turns them into its answers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, text

# Stored lists are ranked 1, 2, 3, ... per movie and per user, so ``rank <= :limit``
# is each one's first ``limit`` rows: one query for any number of ids.
SIMILAR_SQL = text(
    "SELECT movie_id, rank, similar_movie_id, similar_title, similar_genres, score, similar_movie_key "
    "FROM similar_movies WHERE movie_id IN :movie_ids AND rank <= :limit ORDER BY movie_id, rank"
).bindparams(bindparam("movie_ids", expanding=True))
RECOMMEND_MANY_SQL = text(
    "SELECT user_id, rank, movie_id, title, genres, predicted_rating, score, movie_key, model_id "
    "FROM recommended_movies WHERE user_id IN :user_ids AND rank <= :limit ORDER BY user_id, rank"
).bindparams(bindparam("user_ids", expanding=True))
KNOWN_MOVIES_SQL = text("SELECT movie_id FROM movie_biases WHERE model_id = :m AND movie_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
KNOWN_USERS_SQL = text(
    "SELECT b.user_id FROM user_biases b JOIN active_model a ON a.model_id = b.model_id WHERE b.user_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
RECOMMEND_SQL = text(
    "SELECT rank, movie_id, title, genres, predicted_rating, score, movie_key, model_id "
    "FROM recommended_movies WHERE user_id = :user_id ORDER BY rank LIMIT :limit"
)
POPULAR_SQL = text(
    "SELECT rank, movie_id, title, genres, score, n_ratings, mean_rating, movie_key, model_id "
    "FROM popular_movies ORDER BY rank LIMIT :limit"
)


def similar_lists(conn: Connection, movie_ids: list[int], limit: int) -> list[Any]:
    """The first ``limit`` similar movies of each of ``movie_ids`` (by movie, then rank):
    (movie_id, rank, similar_movie_id, similar_title, similar_genres, score,
    similar_movie_key) rows."""
    return list(conn.execute(SIMILAR_SQL, {"movie_ids": movie_ids, "limit": limit}))


def recommended(conn: Connection, user_id: int, limit: int) -> list[Any]:
    """A user's first ``limit`` stored recommendations: (rank, movie_id, title, genres,
    predicted_rating, score, movie_key, model_id) rows; during a traffic split, the
    user's variant's."""
    return list(conn.execute(RECOMMEND_SQL, {"user_id": user_id, "limit": limit}).all())


def recommended_many(conn: Connection, user_ids: list[int], limit: int) -> list[Any]:
    """The first ``limit`` stored recommendations of each of ``user_ids`` (by user, then
    rank): rows as :func:`recommended`'s with ``user_id`` first."""
    return list(conn.execute(RECOMMEND_MANY_SQL, {"user_ids": user_ids, "limit": limit}))


def popular(conn: Connection, limit: int) -> list[Any]:
    """The first ``limit`` popular movies: (rank, movie_id, title, genres, score,
    n_ratings, mean_rating, movie_key, model_id) rows."""
    return list(conn.execute(POPULAR_SQL, {"limit": limit}).all())


def known_movies(conn: Connection, model_id: int, movie_ids: list[int]) -> set[int]:
    """Those of ``movie_ids`` that version ``model_id`` knows (has a bias for)."""
    return set(conn.execute(KNOWN_MOVIES_SQL, {"m": model_id, "ids": movie_ids}).scalars())


def known_users(conn: Connection, user_ids: list[int]) -> set[int]:
    """Those of ``user_ids`` the active model knows (has a bias for)."""
    return set(conn.execute(KNOWN_USERS_SQL, {"ids": user_ids}).scalars())

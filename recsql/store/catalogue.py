"""What the answers are about: the movies' titles and the ratings a model learnt from.

Serving titles its answers and reads one user's ratings (to rank afresh or explain);
the admin's views read a movie's or a user's ratings, rating counts and the whole
catalogue.  The ratings are read where a model read them: recsql's own ``ratings``
table, or an application's tables through a :class:`~recsql.data.source.Source`
(:func:`source_rows`, on the read-only connection :func:`recsql.data.source.reading`
gives).  Each function is one query, on the caller's connection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from recsql.data.matrix import lookup_ids
from recsql.data.source import Source
from recsql.db.keys import Side

MOVIE_SQL = text(
    "SELECT m.movie_id, m.title, m.genres, k.movie_key FROM movies m "
    "LEFT JOIN movie_keys k ON k.movie_id = m.movie_id WHERE m.movie_id = :movie_id"
)

COUNTED_BY_NAME = 1_000  # up to this many movies are counted by id, more by one GROUP BY of all


def movie(conn: Connection, movie_id: int) -> Any | None:
    """A movie's catalogue entry, (movie_id, title, genres, movie_key), or None."""
    return conn.execute(MOVIE_SQL, {"movie_id": movie_id}).first()


def titles(conn: Connection, movie_ids: np.ndarray) -> dict[int, tuple[str | None, str | None, str | None]]:
    """(title, genres, application key) of the given movies that the catalogue or the
    key map has."""
    if len(movie_ids) == 0:
        return {}
    ids = ", ".join(str(int(m)) for m in movie_ids)
    rows = conn.execute(
        text(
            f"SELECT i.movie_id, m.title, m.genres, k.movie_key FROM (SELECT movie_id FROM movies "
            f"WHERE movie_id IN ({ids}) UNION SELECT movie_id FROM movie_keys WHERE movie_id IN ({ids})) i "
            "LEFT JOIN movies m ON m.movie_id = i.movie_id LEFT JOIN movie_keys k ON k.movie_id = i.movie_id"
        )
    ).all()
    return {r.movie_id: (r.title, r.genres, r.movie_key) for r in rows}


def every_title(conn: Connection) -> dict[int, tuple[str | None, str | None]]:
    """Every movie's (title, genres)."""
    return {
        r.movie_id: (r.title, r.genres) for r in conn.execute(text("SELECT movie_id, title, genres FROM movies")).all()
    }


def user_ratings(conn: Connection, user_id: int) -> list[Any]:
    """A user's ratings in recsql's ``ratings``, the highest of repeated ones:
    (movie_id, value) rows."""
    return list(
        conn.execute(
            text("SELECT movie_id, MAX(value) AS value FROM ratings WHERE user_id = :u GROUP BY movie_id"),
            {"u": user_id},
        ).all()
    )


def movie_ratings(conn: Connection, movie_id: int) -> list[float]:
    """Every rating of a movie in recsql's ``ratings``, repeated ones included."""
    return [
        float(v) for v in conn.execute(text("SELECT value FROM ratings WHERE movie_id = :m"), {"m": movie_id}).scalars()
    ]


def source_rows(conn: Connection, source: Source, side: Side, key: int | str) -> list[Any]:
    """The (user, movie, rating) rows of one user or movie (``side``; ``key`` as the
    source knows it) in an application's tables, on ``conn`` (a reading connection)."""
    sql = text(source.ratings_sql(conn, user_filter=side == "user", movie_filter=side == "movie"))
    return list(conn.execute(sql, {f"{side}_id": key}))


def rating_counts(conn: Connection, movie_ids: np.ndarray) -> np.ndarray:
    """How many of recsql's ``ratings`` each of ``movie_ids`` (ascending) has (0 for none)."""
    result = np.zeros(len(movie_ids), dtype=np.int64)
    if not len(movie_ids):
        return result
    sql = "SELECT movie_id, COUNT(*) FROM ratings GROUP BY movie_id"
    if len(movie_ids) <= COUNTED_BY_NAME:
        listed = ", ".join(str(int(m)) for m in movie_ids)
        sql = f"SELECT movie_id, COUNT(*) FROM ratings WHERE movie_id IN ({listed}) GROUP BY movie_id"
    found = conn.execute(text(sql)).all()  # one row per movie: no bulk path needed
    if found:
        rows, known = lookup_ids(movie_ids, np.array([r[0] for r in found], dtype=np.int64))
        result[rows[known]] = np.array([r[1] for r in found], dtype=np.int64)[known]
    return result

"""The statements that fill recsql's own catalogue tables (``ratings``, ``movies``,
``rating_scale``), for the imports (:mod:`recsql.data.imports`) to run inside their
one transaction.  Bulk rows go through :mod:`recsql.db.bulk`'s column paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select

from recsql.db.bulk import indexes_dropped, insert_columns, upsert_columns
from recsql.db.tables import Movie, Rating, RatingScale

Scale = tuple[float, float]


def delete_ratings(conn: Connection) -> None:
    conn.execute(delete(Rating))


def count_ratings(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(Rating)).scalar_one()


def append_ratings(conn: Connection, columns: dict[str, np.ndarray]) -> None:
    """Append rating rows (user_id, movie_id, value, optionally rated_at).  Into an
    empty table the rows go in without its indexes, which are built once after the rows
    (much faster than maintaining them row by row)."""
    if conn.execute(select(Rating.id).limit(1)).first() is None:
        with indexes_dropped(conn, Rating.__table__):  # type: ignore[arg-type]
            insert_columns(conn, Rating.__tablename__, columns)
    else:
        insert_columns(conn, Rating.__tablename__, columns)


def stored_scale(conn: Connection) -> Scale | None:
    """The catalogue's rating scale, or None before the first import."""
    row = conn.execute(select(RatingScale.low, RatingScale.high)).first()
    return (row.low, row.high) if row is not None else None


def stored_span(conn: Connection) -> tuple[float, float] | tuple[None, None]:
    """The lowest and highest stored rating (None, None: no ratings)."""
    low, high = conn.execute(select(func.min(Rating.value), func.max(Rating.value))).one()
    return (low, high) if low is not None else (None, None)


def store_scale(conn: Connection, scale: Scale) -> None:
    conn.execute(delete(RatingScale))
    conn.execute(insert(RatingScale).values(id=1, low=scale[0], high=scale[1]))


def upsert_movies(conn: Connection, frame: pd.DataFrame) -> None:
    """Insert or update movies (columns movie_id, title, genres) by movie id."""
    columns = {c: frame[c].to_numpy(dtype=object) for c in ("movie_id", "title", "genres")}
    upsert_columns(conn, Movie.__tablename__, "movie_id", columns)

"""The ratings as a :class:`~recsql.data.matrix.RatingMatrix`, from wherever they are:
recsql's ``ratings`` table, the application's own tables (a
:class:`~recsql.data.source.Source`), or a file.  Every trainer and evaluator reads
through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from recsql.data.files import read_ratings_file
from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.source import Source, reading
from recsql.db.bulk import read_columns
from recsql.db.keys import integer_ids
from recsql.db.lock import WriterLock
from recsql.errors import NoRatings


def ratings_select(schema: str | None = None) -> str:
    """SELECT of recsql's ratings; named in ``schema`` (a plain name) for connections whose
    search_path is not recsql's (Spark's JDBC readers)."""
    table = "ratings" if schema is None else f'"{schema}".ratings'
    return f"SELECT user_id, movie_id, value FROM {table}"


RATINGS_SQL = ratings_select()
# For duplicates='last': the latest rating wins; undated ones count as older, then import order.
RATINGS_IN_ORDER_SQL = RATINGS_SQL + " ORDER BY CASE WHEN rated_at IS NULL THEN 0 ELSE 1 END, rated_at, id"


def ratings_from_database(
    engine: Engine,
    duplicates: DuplicatePolicy = "max",
    source: Source | None = None,
    lock: WriterLock | None = None,
) -> RatingMatrix:
    """All ratings (recsql's table, or the application's via ``source``) as a sparse
    matrix, duplicates resolved by ``duplicates``.  A text-keyed source's new keys are
    stored, checking the writer ``lock`` (when the caller holds one) before they are."""
    if source is not None and source.ids == "text":
        with reading(engine, source) as conn:
            rows = conn.execute(text(source.ratings_sql(conn, in_order=duplicates == "last"))).all()
        frame = pd.DataFrame(rows, columns=["user", "movie", "value"])
        with engine.begin() as writer:  # new keys get their integers
            if lock is not None:
                lock.check(writer)
            users = integer_ids(writer, "user", frame["user"].to_numpy(dtype=object))
            movies = integer_ids(writer, "movie", frame["movie"].to_numpy(dtype=object))
        values = frame["value"].to_numpy(dtype=np.float64)
    elif source is not None:
        with reading(engine, source) as conn:
            sql = source.ratings_sql(conn, in_order=duplicates == "last")
            users, movies, values = read_columns(conn, sql)
    else:
        users, movies, values = _own_ratings(engine, duplicates)
    if len(values) == 0:
        where = "the source's ratings" if source else "recsql's ratings table"
        raise NoRatings(f"there are no ratings to train on in {where}; import some with `recsql import ratings FILE`")
    return RatingMatrix.from_triples(users, movies, values, duplicates)


def _own_ratings(engine: Engine, duplicates: DuplicatePolicy) -> tuple[np.ndarray, ...]:
    """recsql's ``ratings`` table as three column arrays."""
    with engine.connect() as conn:
        if duplicates == "last":
            return read_columns(conn, RATINGS_IN_ORDER_SQL)
        return read_columns(conn, RATINGS_SQL, table="ratings", key="id")


def timed_from_database(engine: Engine, duplicates: DuplicatePolicy = "max") -> tuple[RatingMatrix, np.ndarray]:
    """recsql's ratings and when each cell was rated (NaN: a rating without a time),
    for the time splits (:mod:`recsql.evaluation.splits`)."""
    with engine.connect() as conn:
        users, movies, values, times, undated = read_columns(
            conn,
            "SELECT user_id, movie_id, value, COALESCE(rated_at, 0), CASE WHEN rated_at IS NULL THEN 1 ELSE 0 END "
            "FROM ratings ORDER BY id",
            "iiffi",
        )
    if len(values) == 0:
        raise NoRatings("there are no ratings in recsql's ratings table; import some with `recsql import ratings FILE`")
    times[undated == 1] = np.nan
    matrix = RatingMatrix.from_triples(users, movies, values, duplicates)
    return matrix, matrix.cell_times(users, movies, times)


def timed_from_file(path: str | Path, duplicates: DuplicatePolicy = "max") -> tuple[RatingMatrix, np.ndarray | None]:
    """A ratings file and when each cell was rated (None: its format has no times)."""
    frame = read_ratings_file(path)
    matrix = RatingMatrix.from_triples(frame.user_id, frame.movie_id, frame.value, duplicates)
    if "rated_at" not in frame:
        return matrix, None
    return matrix, matrix.cell_times(frame.user_id.to_numpy(), frame.movie_id.to_numpy(), frame.rated_at.to_numpy())


def ratings_from_file(path: str | Path, duplicates: DuplicatePolicy = "max") -> RatingMatrix:
    """A ratings file (any supported format) as a rating matrix."""
    frame = read_ratings_file(path)
    return RatingMatrix.from_triples(frame.user_id, frame.movie_id, frame.value, duplicates)


def as_source(source: Source | str | Path | None) -> Source | None:
    """A Source, from itself or from the path of its TOML file."""
    if source is None or isinstance(source, Source):
        return source
    return Source.from_toml(source)

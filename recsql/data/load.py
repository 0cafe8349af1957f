"""Loading data into recsql's own tables: rating and movie files, synthetic catalogues,
and item titles from the application's tables.  Each load is one transaction, so a
failed one changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select, text

from recsql.data.files import read_movies_file, read_ratings_file
from recsql.data.source import Source, read_only
from recsql.data.synthetic import Catalogue, synthetic_ratings
from recsql.db.bulk import indexes_dropped, insert_columns, upsert_columns
from recsql.db.tables import Movie, Rating
from recsql.errors import InvalidParameter


@dataclass(frozen=True)
class ImportResult:
    path: str
    format: str
    rows: int


@dataclass(frozen=True)
class GenerateResult:
    ratings: int
    users: int
    movies: int
    seconds: dict[str, float]


def import_ratings(
    engine: Engine, path: str | Path, format: str | None = None, replace: bool = False
) -> ImportResult:
    """Append the ratings of a file (or replace all ratings) in one transaction."""
    frame = read_ratings_file(path, format)
    with engine.begin() as conn:
        if replace:
            conn.execute(delete(Rating))
        insert_ratings(conn, frame)
    return ImportResult(str(path), frame.attrs["format"], len(frame))


def import_movies(engine: Engine, path: str | Path, format: str | None = None) -> ImportResult:
    """Insert or update the movies of a file (matched by movie id) in one transaction."""
    frame = read_movies_file(path, format)
    with engine.begin() as conn:
        upsert_movies(conn, frame)
    return ImportResult(str(path), frame.attrs["format"], len(frame))


def generate(
    engine: Engine,
    *,
    ratings: int,
    users: int,
    movies: int,
    seed: int = 0,
    replace: bool = False,
) -> GenerateResult:
    """Fill the database with a synthetic catalogue (movies and ratings), in one transaction.

    Refuses a database that already holds ratings unless ``replace`` (which deletes them
    first, in the same transaction).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    catalogue = synthetic_ratings(ratings, users, movies, seed)
    timings["generate"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    with engine.begin() as conn:
        existing = count_ratings(conn)
        if existing and not replace:
            raise InvalidParameter(
                f"the database already holds {existing} ratings; use --replace to swap them for generated ones"
            )
        if existing:
            conn.execute(delete(Rating))
        load_catalogue(conn, catalogue)
    timings["load"] = round(time.perf_counter() - started, 3)
    return GenerateResult(ratings, users, movies, timings)


def load_catalogue(conn: Connection, catalogue: Catalogue) -> None:
    """Upsert a catalogue's movies and append its ratings, inside the caller's transaction."""
    upsert_movies(conn, catalogue.movies)
    insert_ratings(conn, catalogue.ratings)


def insert_ratings(conn: Connection, frame: pd.DataFrame) -> None:
    """Append ratings (columns user_id, movie_id, value and optionally rated_at).

    Into an empty table the rows go in without its indexes, which are built once after
    the rows (much faster than maintaining them row by row).
    """
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    if conn.execute(select(Rating.id).limit(1)).first() is None:
        with indexes_dropped(conn, Rating.__table__):  # type: ignore[arg-type]
            insert_columns(conn, Rating.__tablename__, columns)
    else:
        insert_columns(conn, Rating.__tablename__, columns)


def upsert_movies(conn: Connection, frame: pd.DataFrame) -> None:
    """Insert or update movies (columns movie_id, title, genres) by movie id."""
    columns = {c: frame[c].to_numpy(dtype=object) for c in ("movie_id", "title", "genres")}
    upsert_columns(conn, Movie.__tablename__, "movie_id", columns)


def count_ratings(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(Rating)).scalar_one()


def refresh_titles(engine: Engine, source: Source) -> None:
    """Copy the application's item titles into ``movies`` so the views can show them."""
    if source.movies_table is None:
        return
    with engine.connect() as conn, read_only(conn):
        movies_sql = source.movies_sql(conn)
        assert movies_sql is not None
        frame = pd.DataFrame(conn.execute(text(movies_sql)).all(), columns=["movie_id", "title", "genres"])
    if frame.empty:
        return
    frame["title"] = frame["title"].astype(str)
    with engine.begin() as conn:
        upsert_movies(conn, frame)

"""Imports into recsql's own tables: rating and movie files, synthetic catalogues, and
item titles from the application's tables.  Each import is one transaction, so a
failed one changes nothing; the statements are :mod:`recsql.db.catalogue`'s.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from recsql.data.files import ColumnsArg, LineNumbers, read_movies_file, read_ratings_file
from recsql.data.source import Source, source_movies
from recsql.data.synthetic import Catalogue, Choices, synthetic_ratings
from recsql.db.catalogue import (
    Scale,
    append_ratings,
    count_ratings,
    delete_ratings,
    store_scale,
    stored_scale,
    stored_span,
    upsert_movies,
)
from recsql.db.keys import IdKind, Side, check_id_kind, integer_ids
from recsql.db.lock import WriterLock
from recsql.errors import InputError, InvalidParameter

log = logging.getLogger(__name__)


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
    engine: Engine,
    path: str | Path,
    format: str | None = None,
    replace: bool = False,
    rating_scale: Scale | str | None = None,
    columns: ColumnsArg | None = None,
    delimiter: str | None = None,
    header: bool = True,
    ids: IdKind | None = None,
) -> ImportResult:
    """Append the ratings of a file (or replace all ratings) in one transaction.

    ``ids="text"`` takes the user and movie ids as the application's own keys (text,
    UUIDs), mapped to integers once (:mod:`recsql.db.keys`); the first import decides
    the catalogue's kind and later ones follow it.

    Every rating must lie on the catalogue's scale: ``rating_scale`` (``(1, 5)`` or
    ``"1,5"``) sets it, else the stored one applies, else the first import's ratings
    define it.  A value outside it refuses the whole file, naming its line.

    Any CSV layout: ``columns`` maps the fields user, movie, rating (and optionally
    time, Unix seconds) to header names (``"user=customer,movie=item,rating=stars"`` or
    a dict) or, with ``header=False``, to positions from 1 (default ``user=1,movie=2,
    rating=3``); ``delimiter`` is one character (default ``","``).  Without any of the
    three the format is detected (or ``format`` forces a built-in one).
    """
    scale = parse_scale(rating_scale) if rating_scale is not None else None
    with engine.connect() as conn:
        kind = check_id_kind(conn, ids)
    frame = read_ratings_file(path, format, columns=columns, delimiter=delimiter, header=header, ids=kind)
    with engine.begin() as conn:
        if replace:
            delete_ratings(conn)
        if kind == "text":
            _map_keys(conn, frame, ("user", "movie"))
        insert_ratings(conn, frame, scale, where=path)
    log.info("imported %d ratings from %s%s", len(frame), path, " (replacing all)" if replace else "")
    return ImportResult(str(path), frame.attrs["format"], len(frame))


def import_movies(
    engine: Engine,
    path: str | Path,
    format: str | None = None,
    columns: ColumnsArg | None = None,
    delimiter: str | None = None,
    header: bool = True,
    ids: IdKind | None = None,
) -> ImportResult:
    """Insert or update the movies of a file (matched by movie id) in one transaction.

    ``columns``, ``delimiter``, ``header``, ``ids``: as for :func:`import_ratings`, with the
    fields movie, title (required) and genres (default order ``movie=1,title=2,genres=3``).
    """
    with engine.connect() as conn:
        kind = check_id_kind(conn, ids)
    frame = read_movies_file(path, format, columns=columns, delimiter=delimiter, header=header, ids=kind)
    with engine.begin() as conn:
        if kind == "text":
            _map_keys(conn, frame, ("movie",))
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
    ids: IdKind = "integer",
    choices: Choices = "taste",
) -> GenerateResult:
    """Fill the database with a synthetic catalogue (movies and ratings), in one transaction.

    Which movies users rate follow their hidden tastes as well as popularity
    (``choices="taste"``), or popularity alone (``"popularity"``): see
    :func:`recsql.data.synthetic.synthetic_ratings`.

    Refuses a database that already holds ratings unless ``replace`` (which deletes them
    first, in the same transaction).  ``ids="text"`` gives every user and movie a UUID
    as its application key (:mod:`recsql.db.keys`), as web applications' ids look.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    catalogue = synthetic_ratings(ratings, users, movies, seed, choices)
    timings["generate"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    with engine.begin() as conn:
        existing = count_ratings(conn)
        if existing and not replace:
            raise InvalidParameter(
                f"the database already holds {existing} ratings; use --replace to swap them for generated ones"
            )
        if existing:
            delete_ratings(conn)
        if check_id_kind(conn, ids) == "text":
            catalogue = _with_uuid_keys(conn, catalogue)
        load_catalogue(conn, catalogue)
    timings["load"] = round(time.perf_counter() - started, 3)
    return GenerateResult(ratings, users, movies, timings)


def _with_uuid_keys(conn: Connection, catalogue: Catalogue) -> Catalogue:
    """The catalogue with each user and movie known by a UUID key (stored) and renumbered
    to the integers the keys were given; one key per distinct id, not per rating."""
    ratings, movies = catalogue.ratings.copy(), catalogue.movies.copy()
    sides: tuple[tuple[Side, tuple[pd.DataFrame, ...]], ...] = (("user", (ratings,)), ("movie", (ratings, movies)))
    for side, frames in sides:
        column = f"{side}_id"
        distinct = np.unique(np.concatenate([f[column].to_numpy() for f in frames]))
        keys = np.array([str(uuid.uuid5(uuid.NAMESPACE_OID, f"recsql-{side}-{i}")) for i in distinct], dtype=object)
        renumbered = integer_ids(conn, side, keys)
        for frame in frames:
            frame[column] = renumbered[np.searchsorted(distinct, frame[column].to_numpy())]
    return Catalogue(movies=movies, ratings=ratings)


def _map_keys(conn: Connection, frame: pd.DataFrame, sides: tuple[Side, ...]) -> None:
    """Replace the frame's application keys by recsql's integers, storing new keys."""
    for side in sides:
        frame[f"{side}_id"] = integer_ids(conn, side, frame[f"{side}_id"].to_numpy(dtype=object))


def load_catalogue(conn: Connection, catalogue: Catalogue) -> None:
    """Upsert a catalogue's movies and append its ratings, inside the caller's transaction."""
    upsert_movies(conn, catalogue.movies)
    insert_ratings(conn, catalogue.ratings)


def insert_ratings(
    conn: Connection, frame: pd.DataFrame, scale: Scale | None = None, where: object = "ratings"
) -> None:
    """Append ratings (columns user_id, movie_id, value and optionally rated_at), after
    checking them against the rating scale (:func:`keep_on_scale`)."""
    lines = frame.attrs.get("lines")
    keep_on_scale(
        conn,
        frame["value"].to_numpy(dtype=np.float64),
        scale,
        where,
        lines.numbers if isinstance(lines, LineNumbers) else None,
    )
    append_ratings(conn, {c: frame[c].to_numpy() for c in frame.columns})


def parse_scale(value: Scale | str) -> Scale:
    """``"1,5"`` or ``(1, 5)`` as (low, high); refuses anything that is not low < high."""
    try:
        parts = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        parts = []
    if len(parts) != 2 or not all(np.isfinite(parts)) or parts[0] >= parts[1]:
        raise InvalidParameter(f"a rating scale is two numbers LOW,HIGH with LOW < HIGH (e.g. 1,5), not {value!r}")
    return parts[0], parts[1]


def keep_on_scale(
    conn: Connection, values: np.ndarray, scale: Scale | None, where: object, lines: np.ndarray | None = None
) -> None:
    """Refuse ratings off the scale, and store the scale: ``scale`` if given (the stored
    ratings must fit it), else the stored one, else the span of the first ratings that
    hold two different values."""
    stored = stored_scale(conn)
    if scale is not None and scale != stored:
        low, high = stored_span(conn)
        if low is not None and high is not None and (low < scale[0] or high > scale[1]):
            raise InvalidParameter(
                f"the stored ratings span {low:g} to {high:g}, outside the rating scale {scale[0]:g},{scale[1]:g}; "
                "import them again with --replace to change the scale"
            )
    scale = scale or stored
    if scale is None:
        if not len(values) or values.min() == values.max():
            return  # a single value is no scale: the next import (or --rating-scale) sets it
        scale = (float(values.min()), float(values.max()))
    off = (values < scale[0]) | (values > scale[1])
    if off.any():
        i = int(np.argmax(off))
        raise InputError(
            where,
            f"rating {values[i]:g} is outside the rating scale {scale[0]:g},{scale[1]:g} "
            "(change it with --rating-scale LOW,HIGH)",
            int(lines[i]) if lines is not None else None,
        )
    if scale != stored:
        store_scale(conn, scale)


def refresh_titles(engine: Engine, source: Source, lock: WriterLock | None = None) -> None:
    """Copy the application's item titles into ``movies`` so the views can show them
    (checking the writer ``lock``, when the caller holds one, before they are written)."""
    if source.movies_table is None:
        return
    frame = source_movies(engine, source)
    if frame.empty:
        return
    frame["title"] = frame["title"].astype(str)
    with engine.begin() as conn:
        if lock is not None:
            lock.check(conn)
        if source.ids == "text":
            _map_keys(conn, frame, ("movie",))
        upsert_movies(conn, frame)

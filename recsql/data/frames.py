"""Ratings from a pandas DataFrame (or an Arrow table, or three arrays), for the
in-memory door (:func:`recsql.fit`, ``recsql.evaluate(train=...)``): the columns mapped
as ``--columns`` maps a file's, every user error one
:class:`~recsql.errors.InvalidParameter`.

Ids may be integers or text.  Text ids (any column that is not whole numbers) are
mapped here, once, to integers (:class:`Keys`), as a database of text ids maps them at
import; a model keeps its Keys to take and show the keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsql.data.matrix import DuplicatePolicy, RatingMatrix, lookup_ids
from recsql.errors import InvalidParameter

COLUMNS = {"user": "user_id", "movie": "movie_id", "rating": "value"}
TIMES = ("rated_at", "timestamp")  # a time column found by name when ``columns`` names none
Side = Literal["user", "movie"]


@dataclass(frozen=True)
class Keys:
    """Text ids and the integers computed with: per side, ascending ids and their keys."""

    user_ids: np.ndarray
    user_keys: np.ndarray  # object array of str, parallel to user_ids
    movie_ids: np.ndarray
    movie_keys: np.ndarray

    @classmethod
    def of(cls, users: np.ndarray, movies: np.ndarray) -> Keys:
        """Keys for the distinct ``users`` and ``movies``: 1, 2, ... in sorted key order."""
        user_keys, movie_keys = np.unique(users.astype(str)), np.unique(movies.astype(str))
        return cls(
            np.arange(1, len(user_keys) + 1, dtype=np.int64),
            user_keys.astype(object),
            np.arange(1, len(movie_keys) + 1, dtype=np.int64),
            movie_keys.astype(object),
        )

    def ids(self, side: Side, keys: Any) -> np.ndarray:
        """The integer of each key; a key not mapped gets a negative integer of its own
        (no model knows it, and two unknown keys stay two)."""
        values = pd.Series(as_values(keys)).astype(str)
        known_keys = self.user_keys if side == "user" else self.movie_keys
        known_ids = self.user_ids if side == "user" else self.movie_ids
        at = pd.Index(known_keys).get_indexer(values)
        ids = np.where(at >= 0, known_ids[np.maximum(at, 0)], 0)
        fresh = at < 0
        if fresh.any():
            ids[fresh] = -1 - pd.factorize(values[fresh])[0]
        return ids.astype(np.int64)

    def keys(self, side: Side, ids: np.ndarray) -> np.ndarray:
        """The key of each (known) integer."""
        known_ids = self.user_ids if side == "user" else self.movie_ids
        known_keys = self.user_keys if side == "user" else self.movie_keys
        return known_keys[lookup_ids(known_ids, ids)[0]]

    def relabeled(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> Keys:
        """The same keys under other integers (parallel to this one's ids), re-sorted."""
        users, movies = np.argsort(user_ids), np.argsort(movie_ids)
        return Keys(user_ids[users], self.user_keys[users], movie_ids[movies], self.movie_keys[movies])


@dataclass(frozen=True)
class FrameRatings:
    """A frame's ratings: the matrix, each cell's time (None: no time column) and the
    text ids' keys (None: integer ids)."""

    matrix: RatingMatrix
    times: np.ndarray | None
    keys: Keys | None


def frame_matrix(
    ratings: Any, columns: Mapping[str, str] | None = None, duplicates: DuplicatePolicy = "max"
) -> RatingMatrix:
    """The rating matrix of a DataFrame: ``columns`` names its user, movie and rating
    columns as ``--columns`` does (default user_id, movie_id and value, or rating)."""
    return read_frame(ratings, columns, duplicates).matrix


def as_frame(ratings: Any) -> pd.DataFrame:
    """A DataFrame of ratings given as one, as an Arrow table (or anything with
    ``to_pandas``), or as three (or four, the last a time) parallel arrays."""
    if isinstance(ratings, pd.DataFrame):
        return ratings
    if hasattr(ratings, "to_pandas") and not isinstance(ratings, pd.Series):
        frame = ratings.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    if isinstance(ratings, Sequence) and not isinstance(ratings, str) and len(ratings) in (3, 4):
        columns = ["user_id", "movie_id", "value", "rated_at"][: len(ratings)]
        arrays = [as_values(a) for a in ratings]
        if len({len(a) for a in arrays}) != 1:
            raise InvalidParameter(f"the {len(arrays)} arrays of ratings differ in length: {[len(a) for a in arrays]}")
        return pd.DataFrame(dict(zip(columns, arrays)))
    raise InvalidParameter(
        "ratings must be a pandas DataFrame, an Arrow table or three arrays (users, movies, ratings), "
        f"not {type(ratings).__name__}"
    )


@dataclass(frozen=True)
class Parsed:
    """A frame's columns, checked: raw ids (integers or keys), ratings, times (None: no
    time column)."""

    users: np.ndarray
    movies: np.ndarray
    values: np.ndarray
    times: np.ndarray | None


def parse_frame(ratings: Any, columns: Mapping[str, str] | None = None) -> Parsed:
    """The user, movie, rating and time columns of a frame (see :func:`read_frame`)."""
    ratings = as_frame(ratings)
    names = dict(COLUMNS)
    if columns is None and "value" not in ratings and "rating" in ratings:
        names["rating"] = "rating"
    unknown = sorted(set(columns or {}) - {*COLUMNS, "time"})
    if unknown:
        raise InvalidParameter(f"unknown column role {', '.join(unknown)} (roles: user, movie, rating, time)")
    names.update(columns or {})
    found = [name for name in TIMES if name in ratings]
    if "time" not in names and found:
        names["time"] = found[0]
    missing = [name for name in names.values() if name not in ratings]
    if missing:
        raise InvalidParameter(
            f"the ratings have no column {', '.join(missing)} (columns: {', '.join(map(str, ratings))})"
        )
    if len(ratings) == 0:
        raise InvalidParameter("the DataFrame holds no ratings")
    users, movies = ratings[names["user"]].to_numpy(), ratings[names["movie"]].to_numpy()
    for name, ids in ((names["user"], users), (names["movie"], movies)):
        if pd.isna(ids).any():
            raise InvalidParameter(f"column {name} holds a missing id")
    values = pd.to_numeric(ratings[names["rating"]], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InvalidParameter(f"column {names['rating']} holds a value that is not a finite number")
    times = seconds(ratings[names["time"]]) if "time" in names else None
    return Parsed(users, movies, values, times)


def read_frame(
    ratings: Any,
    columns: Mapping[str, str] | None = None,
    duplicates: DuplicatePolicy = "max",
    keys: Keys | None = None,
) -> FrameRatings:
    """:func:`frame_matrix`, when each cell was rated (the ``time`` role of ``columns``,
    else a column rated_at or timestamp; Unix seconds or datetimes) and, for text ids,
    their :class:`Keys`: ``keys`` maps them when given (a test frame, by its training
    frame's keys), else they are made here."""
    parsed = parse_frame(ratings, columns)
    if keys is None and (is_text(parsed.users) or is_text(parsed.movies)):
        keys = Keys.of(parsed.users, parsed.movies)
    if keys is not None:
        user, movie = keys.ids("user", parsed.users), keys.ids("movie", parsed.movies)
    else:
        user, movie = integer_ids(parsed.users, "user ids"), integer_ids(parsed.movies, "movie ids")
    matrix = RatingMatrix.from_triples(user, movie, parsed.values, duplicates)
    times = None if parsed.times is None else matrix.cell_times(user, movie, parsed.times)
    return FrameRatings(matrix, times, keys)


def as_values(ids: Any) -> np.ndarray:
    """A scalar, a sequence, an array or a Series as a one-dimensional array."""
    return np.atleast_1d(np.asarray(ids.to_numpy() if isinstance(ids, pd.Series) else ids))


def is_text(ids: np.ndarray) -> bool:
    """Whether ids are keys (text) rather than whole numbers."""
    try:
        integer_ids(ids, "ids")
    except InvalidParameter:
        return True
    return False


def seconds(column: pd.Series) -> np.ndarray:
    """A time column as Unix seconds (NaN where missing): numbers as they are, datetimes converted."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column.dt.tz_localize("UTC") if column.dt.tz is None else column
        seconds = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        return seconds.to_numpy(dtype=np.float64, na_value=np.nan)
    times = pd.to_numeric(column, errors="coerce")
    if times.isna().sum() > column.isna().sum():
        raise InvalidParameter(f"column {column.name} holds a time that is neither a number nor a datetime")
    return times.to_numpy(dtype=np.float64, na_value=np.nan)


def integer_ids(ids: Any, what: str) -> np.ndarray:
    """Integer ids from a scalar, a sequence, an array or a Series (whole numbers
    stored as floats or objects too)."""
    values = as_values(ids)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    if len(values) and np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return numbers.astype(np.int64)
    raise InvalidParameter(f"{what} must be whole numbers: this model was fitted on integer ids")

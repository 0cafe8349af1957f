"""Ratings from a pandas DataFrame, for the in-memory door (:func:`recsql.fit`,
``recsql.evaluate(train=...)``): the columns mapped as ``--columns`` maps a file's,
every user error one :class:`~recsql.errors.InvalidParameter`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.errors import InvalidParameter

COLUMNS = {"user": "user_id", "movie": "movie_id", "rating": "value"}
TIMES = ("rated_at", "timestamp")  # a time column found by name when ``columns`` names none


def frame_matrix(
    ratings: pd.DataFrame, columns: Mapping[str, str] | None = None, duplicates: DuplicatePolicy = "max"
) -> RatingMatrix:
    """The rating matrix of a DataFrame: ``columns`` names its user, movie and rating
    columns as ``--columns`` does (default user_id, movie_id and value, or rating)."""
    return frame_timed(ratings, columns, duplicates)[0]


def frame_timed(
    ratings: pd.DataFrame, columns: Mapping[str, str] | None = None, duplicates: DuplicatePolicy = "max"
) -> tuple[RatingMatrix, np.ndarray | None]:
    """:func:`frame_matrix` and when each cell was rated (None: no time column): the
    ``time`` role of ``columns``, else a column rated_at or timestamp; Unix seconds or
    datetimes."""
    if not isinstance(ratings, pd.DataFrame):
        raise InvalidParameter(f"ratings must be a pandas DataFrame, not {type(ratings).__name__}")
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
    user, movie = integer_ids(ratings[names["user"]], "user ids"), integer_ids(ratings[names["movie"]], "movie ids")
    values = pd.to_numeric(ratings[names["rating"]], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InvalidParameter(f"column {names['rating']} holds a value that is not a finite number")
    matrix = RatingMatrix.from_triples(user, movie, values, duplicates)
    if "time" not in names:
        return matrix, None
    return matrix, matrix.cell_times(user, movie, _seconds(ratings[names["time"]]))


def _seconds(column: pd.Series) -> np.ndarray:
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
    """Integer ids from a scalar, a sequence, an array or a Series."""
    values = np.atleast_1d(np.asarray(ids.to_numpy() if isinstance(ids, pd.Series) else ids))
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and np.isfinite(values).all() and (values == np.round(values)).all():
            return values.astype(np.int64)
        raise InvalidParameter(f"{what} must be whole numbers (text ids are not supported in memory yet)")
    return values.astype(np.int64)

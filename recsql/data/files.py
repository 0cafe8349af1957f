"""Rating and movie files: read into frames of checked values, with messages that name
the file, the line and the reason.  Pure parsing: nothing here writes.

The work is split by job: :mod:`~recsql.data.formats` (the formats and their detection),
:mod:`~recsql.data.layouts` (layouts of the caller's, from --columns, --delimiter,
--no-header), :mod:`~recsql.data.reader` (decoding and the one CSV tokenizer, with each
row's line) and :mod:`~recsql.data.checks` (each field's rules and messages).

A file is parsed and checked completely before anything is written (by
:mod:`recsql.data.imports`, in one transaction): a bad line means nothing from that file is
imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsql.data import checks, formats
from recsql.data.formats import FORMATS, ML100K_GENRES, MOVIE_LAYOUTS, RATING_LAYOUTS
from recsql.data.layouts import CUSTOM, ColumnsArg, CustomLayout, custom_layout, read_custom
from recsql.data.reader import Column, read_table
from recsql.errors import InputError

__all__ = [
    "CUSTOM",
    "FORMATS",
    "ML100K_GENRES",
    "MOVIE_LAYOUTS",
    "RATING_LAYOUTS",
    "ColumnsArg",
    "CustomLayout",
    "LineNumbers",
    "custom_layout",
    "read_movies_file",
    "read_ratings_file",
]


class LineNumbers:
    """Each row's line in its file, kept in ``frame.attrs["lines"]`` for errors found after
    parsing (the rating scale is checked on import).  Compared by identity, because pandas
    compares attrs when it combines frames."""

    def __init__(self, numbers: np.ndarray):
        self.numbers = numbers


def _read(
    path: Path, kind: str, format: str | None, custom: CustomLayout | None
) -> tuple[str, dict[str, Column], np.ndarray, list[Column]]:
    """The format read, the file's columns by field, each row's line, and all its
    columns by position (u.item's genre flags are columns 5 to 23)."""
    data = formats.read_bytes(path)
    if custom is not None:
        named, lines = read_custom(path, data, custom)
        return CUSTOM, named, lines, list(named.values())
    format = format or formats.detect(path, data, kind)
    layout = formats.layout(kind, format, path)
    table, lines = read_table(path, data, layout)
    fields = formats.FIELDS[kind]
    if layout.fields > len(fields):  # u.item: id, title, dates, address, flags
        return format, {"movie": table[0], "title": table[1]}, lines, table
    return format, dict(zip(fields, table)), lines, table


def read_ratings_file(
    path: str | Path,
    format: str | None = None,
    *,
    columns: ColumnsArg | None = None,
    delimiter: str | None = None,
    header: bool = True,
    ids: str = "integer",
) -> pd.DataFrame:
    """Parse a ratings file into columns user_id, movie_id, value and, when the format
    has timestamps, rated_at (Unix seconds).  With ``ids="text"`` the user and movie ids
    are the application's keys (strings, exactly as given), for :mod:`recsql.db.keys` to map.

    ``columns``, ``delimiter`` and ``header=False`` read a layout of the caller's
    (:func:`custom_layout`) instead of a detected or forced ``format``.
    """
    path = Path(path)
    custom = custom_layout("ratings", columns, delimiter, header, format)
    format, table, lines, _ = _read(path, "ratings", format, custom)
    frame = pd.DataFrame(
        {
            "user_id": checks.ids(path, table["user"], lines, "user id", ids),
            "movie_id": checks.ids(path, table["movie"], lines, "movie id", ids),
            "value": checks.numbers(path, table["rating"], lines, "rating"),
        }
    )
    if "time" in table:
        frame["rated_at"] = checks.integers(path, table["time"], lines, "timestamp", negative=True)
    frame.attrs["format"] = format
    frame.attrs["lines"] = LineNumbers(lines)
    return frame


def read_movies_file(
    path: str | Path,
    format: str | None = None,
    *,
    columns: ColumnsArg | None = None,
    delimiter: str | None = None,
    header: bool = True,
    ids: str = "integer",
) -> pd.DataFrame:
    """Parse a movies file into columns movie_id, title, genres (``columns``,
    ``delimiter``, ``header``, ``ids``: as for :func:`read_ratings_file`)."""
    path = Path(path)
    custom = custom_layout("movies", columns, delimiter, header, format)
    format, table, lines, everything = _read(path, "movies", format, custom)
    movie_ids = checks.ids(path, table["movie"], lines, "movie id", ids)
    titles = pd.Series(table["title"].fields(), dtype=object).str.strip().to_numpy(dtype=object)
    empty = titles == ""
    if empty.any():
        raise InputError(path, "missing title", int(lines[np.argmax(empty)]))
    if format == "movielens-100k":
        genres = checks.genres_from_flags(path, [flags.fields() for flags in everything[5:24]], lines)
    elif "genres" not in table:  # a custom layout without genres
        genres = np.full(len(titles), None, dtype=object)
    else:
        genres = pd.Series(table["genres"].fields(), dtype=object).str.strip().to_numpy(dtype=object, copy=True)
        genres[genres == ""] = None
    repeated = pd.Series(movie_ids).duplicated().to_numpy()
    if repeated.any():
        first = int(np.argmax(repeated))
        raise InputError(path, f"movie id {movie_ids[first]} appears twice", int(lines[first]))
    frame = pd.DataFrame({"movie_id": movie_ids, "title": titles, "genres": genres})
    frame.attrs["format"] = format
    return frame

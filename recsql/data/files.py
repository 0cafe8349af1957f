"""Rating and movie files: the formats recsql reads, parsed and validated with messages
that name the file, the line and the reason.  Pure parsing: nothing here writes.

Supported formats (auto-detected from the first line, or forced with ``format=``):

=================  ==========================================  ==================================
format             ratings                                     movies
=================  ==========================================  ==================================
``tutorial``       ``user_id,movie_id,value`` (CSV, header)    ``movie_id,title,genre``
``movielens``      ``userId,movieId,rating,timestamp``         ``movieId,title,genres`` (``|``)
``movielens-100k`` ``u.data``: user, item, rating, timestamp   ``u.item``: ``|``-separated latin-1,
                   tab-separated, no header                    19 genre flags (names: ``u.genre``)
=================  ==========================================  ==================================

A file is parsed and checked completely before anything is written (by
:mod:`recsql.data.load`, in one transaction): a bad line means nothing from that file is
imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsql.errors import InputError

FORMATS: tuple[str, ...] = ("tutorial", "movielens", "movielens-100k")

# The 19 genres of MovieLens 100K in flag order, used when u.genre is not beside u.item.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


@dataclass(frozen=True)
class _Layout:
    """How one format lays out one kind of file."""

    sep: str
    header: tuple[str, ...] | None  # expected header (lower-cased), None if headerless
    fields: int
    encoding: str = "utf-8-sig"
    quoted: bool = True


RATING_LAYOUTS = {
    "tutorial": _Layout(",", ("user_id", "movie_id", "value"), 3),
    "movielens": _Layout(",", ("userid", "movieid", "rating", "timestamp"), 4),
    "movielens-100k": _Layout("\t", None, 4, quoted=False),
}
MOVIE_LAYOUTS = {
    "tutorial": _Layout(",", ("movie_id", "title", "genre"), 3),
    "movielens": _Layout(",", ("movieid", "title", "genres"), 3),
    "movielens-100k": _Layout("|", None, 24, encoding="latin-1", quoted=False),
}


def read_ratings_file(path: str | Path, format: str | None = None) -> pd.DataFrame:
    """Parse a ratings file into columns user_id, movie_id, value and, when the format
    has timestamps, rated_at (Unix seconds)."""
    path = Path(path)
    data = _read_bytes(path)
    format = format or _detect(path, data, RATING_LAYOUTS, "ratings")
    layout = _layout(RATING_LAYOUTS, format, path)
    table, lines = _parse(path, data, layout)
    frame = pd.DataFrame(
        {
            "user_id": _integers(path, table.iloc[:, 0], lines, "user id"),
            "movie_id": _integers(path, table.iloc[:, 1], lines, "movie id"),
            "value": _numbers(path, table.iloc[:, 2], lines, "rating"),
        }
    )
    if layout.fields == 4:
        frame["rated_at"] = _integers(path, table.iloc[:, 3], lines, "timestamp", negative=True)
    frame.attrs["format"] = format
    return frame


def read_movies_file(path: str | Path, format: str | None = None) -> pd.DataFrame:
    """Parse a movies file into columns movie_id, title, genres."""
    path = Path(path)
    data = _read_bytes(path)
    format = format or _detect(path, data, MOVIE_LAYOUTS, "movies")
    layout = _layout(MOVIE_LAYOUTS, format, path)
    table, lines = _parse(path, data, layout)
    ids = _integers(path, table.iloc[:, 0], lines, "movie id")
    titles = table.iloc[:, 1].str.strip()
    empty = (titles == "").to_numpy()
    if empty.any():
        raise InputError(path, "missing title", int(lines[np.argmax(empty)]))
    if format == "movielens-100k":
        genres = _genres_from_flags(path, table.iloc[:, 5:24], lines)
    else:
        genres = table.iloc[:, 2].str.strip().replace("", None)
    repeated = pd.Series(ids).duplicated().to_numpy()
    if repeated.any():
        first = int(np.argmax(repeated))
        raise InputError(path, f"movie id {ids[first]} appears twice", int(lines[first]))
    frame = pd.DataFrame({"movie_id": ids, "title": titles.to_numpy(), "genres": genres.to_numpy()})
    frame.attrs["format"] = format
    return frame


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    if not data.strip():
        raise InputError(path, "the file is empty")
    return data


def _layout(layouts: dict[str, _Layout], format: str, path: Path) -> _Layout:
    if format not in layouts:
        raise InputError(path, f"unknown format {format!r}; choose from {', '.join(layouts)}")
    return layouts[format]


def _detect(path: Path, data: bytes, layouts: dict[str, _Layout], kind: str) -> str:
    first = data.split(b"\n", 1)[0].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf").strip()
    fields = [f.strip().lower() for f in first.split(",")]
    for name, layout in layouts.items():
        if layout.header is not None and tuple(fields[: len(layout.header)]) == layout.header:
            return name
        if layout.header is None and len(first.split(layout.sep)) == layout.fields:
            return name
    expected = "; ".join(
        f"{name}: " + (",".join(lay.header) if lay.header else f"{lay.fields} {lay.sep!r}-separated fields")
        for name, lay in layouts.items()
    )
    raise InputError(
        path,
        f"cannot tell the {kind} format from the first line {first[:80]!r} "
        f"(expected {expected}); use --format",
        1,
    )


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            path, f"not valid {encoding.removesuffix('-sig').upper()} text (byte 0x{data[exc.start]:02x})", line
        ) from None


def _parse(path: Path, data: bytes, layout: _Layout) -> tuple[pd.DataFrame, np.ndarray]:
    """Split into string fields; returns the table and each row's line number in the file."""
    text = _decode(path, data, layout.encoding).rstrip("\r\n\t ")
    body = text.encode(layout.encoding.removesuffix("-sig"), errors="replace")
    starts, counts = _record_field_counts(body, layout)
    lines = _line_numbers(body, starts)
    if layout.header is not None:
        starts, counts, lines = starts[1:], counts[1:], lines[1:]
    if len(starts) == 0:
        raise InputError(path, "the file has a header but no data rows")
    bad = counts != layout.fields
    if bad.any():
        i = int(np.argmax(bad))
        reason = "empty line" if counts[i] == 0 else f"expected {layout.fields} fields, found {counts[i]}"
        raise InputError(path, reason, int(lines[i]))
    table = pd.read_csv(
        io.StringIO(text),
        sep=layout.sep,
        header=0 if layout.header is not None else None,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        index_col=False,
        quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
        engine="c",
    )
    if len(table) != len(lines):  # cannot happen if the counts above agree; keep it loud
        raise InputError(path, f"parsed {len(table)} rows but the file has {len(lines)} records")
    return table, lines


def _record_field_counts(body: bytes, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and number of fields of every record, without a Python loop per line.

    Delimiters and line breaks inside double quotes do not count (for quoted formats).
    An empty record (blank line) has 0 fields.
    """
    raw = np.frombuffer(body, dtype=np.uint8)
    outside = np.ones(len(raw), dtype=bool)
    if layout.quoted and b'"' in body:
        outside = (np.cumsum(raw == ord('"')) % 2) == 0
    breaks = np.flatnonzero((raw == ord("\n")) & outside)
    starts = np.concatenate([[0], breaks + 1])
    delims = np.flatnonzero((raw == ord(layout.sep)) & outside)
    counts = np.bincount(np.searchsorted(breaks, delims), minlength=len(starts)) + 1
    ends = np.concatenate([breaks, [len(raw)]])
    length = ends - starts
    # A record that is empty, or only "\r", is a blank line.
    lone_cr = (length == 1) & (raw[np.minimum(starts, len(raw) - 1)] == ord("\r"))
    counts[(length == 0) | lone_cr] = 0
    return starts, counts


def _line_numbers(body: bytes, starts: np.ndarray) -> np.ndarray:
    raw = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(raw == ord("\n"))
    return np.searchsorted(newlines, starts) + 1


def _numbers(path: Path, column: pd.Series, lines: np.ndarray, what: str) -> np.ndarray:
    stripped = column.str.strip()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raw = stripped.iloc[i]
        reason = f"missing {what}" if raw == "" else f"{what} {raw!r} is not a number"
        raise InputError(path, reason, int(lines[i]))
    return values


BIGINT_MAX = "9223372036854775807"


def _integers(path: Path, column: pd.Series, lines: np.ndarray, what: str, *, negative: bool = False) -> np.ndarray:
    """Whole numbers, parsed exactly (never through a float: ids above 2^53 stay distinct),
    within the 64-bit range the tables store; negative ones only where ``negative``."""
    stripped = column.str.strip()

    def refuse(bad: np.ndarray, reason: str) -> None:
        if bad.any():
            i = int(np.argmax(bad))
            raw = stripped.iloc[i]
            raise InputError(path, f"missing {what}" if raw == "" else reason.format(raw=raw), int(lines[i]))

    refuse(~stripped.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool), f"{what} {{raw!r}} is not a whole number")
    digits = stripped.str.lstrip("+-").str.lstrip("0")
    length = digits.str.len().to_numpy()
    refuse((length > 19) | ((length == 19) & (digits > BIGINT_MAX).to_numpy(dtype=bool)),
           f"{what} {{raw}} is outside the 64-bit integer range")
    values = stripped.astype(np.int64).to_numpy()
    if not negative:
        refuse(values < 0, f"{what} {{raw}} is negative")
    return values


def _genres_from_flags(path: Path, flags: pd.DataFrame, lines: np.ndarray) -> pd.Series:
    names = _ml100k_genre_names(path)
    matrix = flags.apply(lambda c: c.str.strip()).to_numpy()
    valid = np.isin(matrix, ["0", "1"])
    if not valid.all():
        row = int(np.argmax(~valid.all(axis=1)))
        raise InputError(path, "genre flags must be 0 or 1", int(lines[row]))
    on = matrix == "1"
    return pd.Series(["|".join(n for n, f in zip(names, row) if f) or None for row in on])


def _ml100k_genre_names(item_path: Path) -> tuple[str, ...]:
    """Genre names in flag order from u.genre beside u.item, else the published list."""
    genre_file = item_path.with_name("u.genre")
    if not genre_file.is_file():
        return ML100K_GENRES
    pairs = []
    for line in genre_file.read_text(encoding="latin-1").splitlines():
        if "|" in line:
            name, _, index = line.rpartition("|")
            pairs.append((int(index), name))
    names = tuple(name for _, name in sorted(pairs))
    if len(names) != len(ML100K_GENRES):
        raise InputError(genre_file, f"expected {len(ML100K_GENRES)} genres, found {len(names)}")
    return names

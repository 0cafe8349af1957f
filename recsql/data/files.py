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

import codecs
import csv
import io
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsql.errors import InputError, InvalidParameter

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


_QUOTE, _NEWLINE, _CR = ord('"'), ord("\n"), ord("\r")


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


class LineNumbers:
    """Each row's line in its file, kept in ``frame.attrs["lines"]`` for errors found after
    parsing (the rating scale is checked on import).  Compared by identity, because pandas
    compares attrs when it combines frames."""

    def __init__(self, numbers: np.ndarray):
        self.numbers = numbers


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
    are the application's keys (strings, exactly as given), for :mod:`recsql.data.keys` to map.

    ``columns``, ``delimiter`` and ``header=False`` read a layout of the caller's
    (:func:`custom_layout`) instead of a detected or forced ``format``.
    """
    path = Path(path)
    custom = custom_layout("ratings", columns, delimiter, header, format)
    data = _read_bytes(path)
    if custom is not None:
        table, lines = _read_custom(path, data, custom)
        format = CUSTOM
    else:
        format = format or _detect(path, data, RATING_LAYOUTS, "ratings")
        layout = _layout(RATING_LAYOUTS, format, path)
        table, lines = _parse(path, data, layout)
        table.columns = list(RATING_FIELDS[: layout.fields])
    frame = pd.DataFrame(
        {
            "user_id": _ids(path, table["user"], lines, "user id", ids),
            "movie_id": _ids(path, table["movie"], lines, "movie id", ids),
            "value": _numbers(path, table["rating"], lines, "rating"),
        }
    )
    if "time" in table.columns:
        frame["rated_at"] = _integers(path, table["time"], lines, "timestamp", negative=True)
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
    data = _read_bytes(path)
    if custom is not None:
        format = CUSTOM
        table, lines = _read_custom(path, data, custom)
    else:
        format = format or _detect(path, data, MOVIE_LAYOUTS, "movies")
        layout = _layout(MOVIE_LAYOUTS, format, path)
        table, lines = _parse(path, data, layout)
    movie_ids = _ids(path, table.iloc[:, 0], lines, "movie id", ids)
    titles = table.iloc[:, 1].str.strip()
    empty = (titles == "").to_numpy()
    if empty.any():
        raise InputError(path, "missing title", int(lines[np.argmax(empty)]))
    if format == "movielens-100k":
        genres = _genres_from_flags(path, table.iloc[:, 5:24], lines)
    elif table.shape[1] < 3:  # a custom layout without genres
        genres = pd.Series([None] * len(table), dtype=object)
    else:
        genres = table.iloc[:, 2].str.strip().replace("", None)
    repeated = pd.Series(movie_ids).duplicated().to_numpy()
    if repeated.any():
        first = int(np.argmax(repeated))
        raise InputError(path, f"movie id {movie_ids[first]} appears twice", int(lines[first]))
    frame = pd.DataFrame({"movie_id": movie_ids, "title": titles.to_numpy(), "genres": genres.to_numpy()})
    frame.attrs["format"] = format
    return frame


# ------------------------------------------------------------------ custom layouts
#
# A layout of the caller's: ``columns`` says which column holds each of recsql's fields,
# by header name (case-insensitive; columns not named are ignored) or, without a header,
# by position from 1 (default: the tutorial order).  The records are split by the same
# splitter and tokenizer as the built-in quoted formats, so quotes, byte-order marks,
# line numbers and refusals work alike.

CUSTOM = "custom"
RATING_FIELDS: tuple[str, ...] = ("user", "movie", "rating", "time")
MOVIE_FIELDS: tuple[str, ...] = ("movie", "title", "genres")
_FIELDS = {"ratings": RATING_FIELDS, "movies": MOVIE_FIELDS}
_REQUIRED = {"ratings": 3, "movies": 2}
_EXAMPLES = {"ratings": "user=customer,movie=item,rating=stars", "movies": "movie=id,title=name,genres=category"}
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}

ColumnsArg = str | Mapping[str, str | int]


@dataclass(frozen=True)
class CustomLayout:
    """Where a file of the caller's layout keeps each field: (field, header name) pairs
    with a header, (field, 1-based position) pairs without; empty: the built-in header
    names with a header, the tutorial order without."""

    kind: str
    columns: tuple[tuple[str, str | int], ...]
    delimiter: str = ","
    header: bool = True


def _fields_help(kind: str) -> str:
    fields = _FIELDS[kind]
    required, optional = fields[: _REQUIRED[kind]], fields[_REQUIRED[kind]:]
    return (f"the {kind} fields are {', '.join(required)} (required) and {', '.join(optional)} (optional), "
            f"e.g. --columns {_EXAMPLES[kind]}")


def custom_layout(
    kind: str, columns: ColumnsArg | None, delimiter: str | None, header: bool, format: str | None = None
) -> CustomLayout | None:
    """The layout ``columns``, ``delimiter`` and ``header`` describe (None when all three
    are left out: the format is detected).  Raises InvalidParameter, naming the accepted
    fields, for anything it cannot read.

    ``columns``: ``"user=customer,movie=item,rating=stars"`` or ``{"user": "customer", ...}``;
    header names with a header, positions from 1 (``user=1,movie=2,rating=3``) without.
    """
    if columns is None and delimiter is None and header:
        return None
    if format is not None:
        raise InvalidParameter(
            "--format reads a built-in layout; leave it out with --columns, --delimiter or --no-header"
        )
    sep = _delimiter(delimiter if delimiter is not None else ",")
    if columns is None:
        return CustomLayout(kind, (), sep, header)
    return CustomLayout(kind, _column_pairs(kind, columns, header), sep, header)


def _delimiter(value: str) -> str:
    sep = _DELIMITER_NAMES.get(value.lower(), value) if isinstance(value, str) else ""
    if len(sep) != 1 or not (sep == "\t" or (sep in string.punctuation and sep not in '".+-')):
        raise InvalidParameter(
            f"a delimiter is one character: tab (or \\t) or punctuation other than \" . + - (e.g. ';' or '|'), "
            f"not {value!r}"
        )
    return sep


def _column_pairs(kind: str, columns: ColumnsArg, header: bool) -> tuple[tuple[str, str | int], ...]:
    fields = _FIELDS[kind]
    malformed = InvalidParameter(
        f"--columns takes FIELD=COLUMN pairs separated by commas, not {columns!r}; {_fields_help(kind)}"
    )
    pairs: dict[str, object] = {}
    if isinstance(columns, str):
        for part in columns.split(","):
            field, equals, column = part.partition("=")
            if not equals or not field.strip() or not column.strip():
                raise malformed
            if field.strip().lower() in pairs:
                raise InvalidParameter(f"--columns names the field {field.strip()!r} twice; {_fields_help(kind)}")
            pairs[field.strip().lower()] = column
    elif isinstance(columns, Mapping) and columns:
        pairs = {str(field).strip().lower(): column for field, column in columns.items()}
    else:
        raise malformed
    unknown = [field for field in pairs if field not in fields]
    if unknown:
        raise InvalidParameter(f"unknown field {unknown[0]!r} in --columns; {_fields_help(kind)}")
    missing = [field for field in fields[: _REQUIRED[kind]] if field not in pairs]
    if missing:
        raise InvalidParameter(f"--columns does not name {' or '.join(missing)}; {_fields_help(kind)}")
    resolved: list[tuple[str, str | int]] = []
    for field in (f for f in fields if f in pairs):
        value = pairs[field]
        if header:
            if not isinstance(value, str) or not value.strip():
                raise InvalidParameter(
                    f"with a header line, --columns names its columns ({field}={value!r} names none); "
                    "positions from 1 need --no-header"
                )
            resolved.append((field, value.strip()))
        else:
            text = value.strip() if isinstance(value, str) else None
            if isinstance(value, int) and not isinstance(value, bool):
                position = value
            elif text is not None and re.fullmatch(r"[0-9]{1,9}", text):
                position = int(text)
            else:
                position = 0
            if position < 1:
                raise InvalidParameter(
                    f"without a header line, --columns gives positions from 1 ({field}={value!r} is none), "
                    f"e.g. --columns {','.join(f'{f}={i}' for i, f in enumerate(fields[: _REQUIRED[kind]], 1))}"
                )
            resolved.append((field, position))
    seen: dict[object, str] = {}
    for field, named in resolved:
        key = named.casefold() if isinstance(named, str) else named
        if key in seen:
            raise InvalidParameter(f"--columns gives {seen[key]} and {field} the same column {named!r}")
        seen[key] = field
    return tuple(resolved)


def _read_custom(path: Path, data: bytes, custom: CustomLayout) -> tuple[pd.DataFrame, np.ndarray]:
    """The named columns of every data row, named by field (in field order), and each
    row's line in the file."""
    layout = _Layout(custom.delimiter, None, 0)
    # A tab that ends the file ends an empty last field there, not trailing space.
    body, starts, counts, lines = _records(path, data, layout, "\r\n\t ".replace(custom.delimiter, ""))
    fields = int(counts[0])
    if fields == 0:
        raise InputError(path, "empty line", 1)
    end = int(starts[1]) if len(starts) > 1 else len(body)
    if custom.header:
        names = [name.strip() for name in _tokenize(path, body[:end], layout, fields, 1).iloc[0].tolist()]
        positions = _header_positions(path, custom, names)
        if len(starts) == 1:
            raise InputError(path, "the file has a header but no data rows")
        _check_counts(path, counts[1:], lines[1:], fields, " (as the header has)")
        table, lines = _tokenize(path, body[end:], layout, fields, len(lines) - 1), lines[1:]
    else:
        columns = custom.columns or tuple(zip(_FIELDS[custom.kind], range(1, 4)))
        beyond = [(field, column) for field, column in columns if int(column) > fields]
        if beyond:
            field, column = beyond[0]
            raise InputError(path, f"--columns reads {field} from column {column}, but this line has {fields}", 1)
        positions = {field: int(column) - 1 for field, column in columns}
        _check_counts(path, counts, lines, fields, " (as line 1 has)")
        table = _tokenize(path, body, layout, fields, len(lines))
    named = table.iloc[:, list(positions.values())]
    named.columns = list(positions)
    return named, lines


def _header_positions(path: Path, custom: CustomLayout, names: list[str]) -> dict[str, int]:
    """Each field's column in the header ``names`` (case-insensitive; an exact match
    wins).  Without ``custom.columns``, the built-in headers' names."""
    folded = [name.casefold() for name in names]
    layouts = RATING_LAYOUTS if custom.kind == "ratings" else MOVIE_LAYOUTS
    candidates = [custom.columns] if custom.columns else [
        tuple(zip(_FIELDS[custom.kind], lay.header)) for lay in layouts.values() if lay.header is not None
    ]
    for columns in candidates:
        if all(str(column).casefold() in folded for _, column in columns):
            break
    else:
        shown = _listed(names)
        if re.match(r"[+-]?[0-9]", names[0]):
            shown += " (is it data? then use --no-header)"
        other = [sep for sep in ",;\t|" if len(names) == 1 and sep in names[0] and sep != custom.delimiter]
        if other:
            shown += f" (is the delimiter {other[0]!r}?)"
        if custom.columns:
            absent = [f"{_shown(str(c))} ({f})" for f, c in custom.columns if str(c).casefold() not in folded]
            raise InputError(path, f"the header has no column {' or '.join(absent)}; its columns: {shown}", 1)
        guess = _guess_columns(custom.kind, names)
        hint = f"--columns {shlex.quote(guess)}" if guess else _columns_template(custom.kind)
        raise InputError(path, f"the header is not a built-in one; name its columns: {hint}; its columns: {shown}", 1)
    positions = {}
    for field, column in columns:
        exact = [i for i, name in enumerate(names) if name == column]
        loose = [i for i, name in enumerate(folded) if name == str(column).casefold()]
        found = exact or loose
        if len(found) > 1:
            raise InputError(path, f"the header has {len(found)} columns named {_shown(str(column))} ({field})", 1)
        positions[field] = found[0]
    return positions


# Header names (lower-cased, without spaces, _, - and .) that say which field a column
# holds, for the --columns a refusal suggests.  Only a full set of required fields makes
# a suggestion.
_SYNONYMS = {
    "user": {"user", "userid", "users", "customer", "customerid", "client", "clientid", "member", "memberid",
             "reviewer", "reviewerid", "rater", "raterid", "account", "accountid", "person", "personid", "uid",
             "visitor", "visitorid", "buyer", "buyerid"},
    "movie": {"movie", "movieid", "movies", "item", "itemid", "items", "product", "productid", "film", "filmid",
              "iid", "mid", "sku", "asin", "book", "bookid", "article", "articleid", "video", "videoid", "show",
              "showid", "content", "contentid"},
    "rating": {"rating", "ratings", "value", "stars", "star", "score", "rate", "grade", "vote", "points"},
    "time": {"timestamp", "time", "ts", "ratedat", "createdat", "created", "unixtime", "epoch"},
    "title": {"title", "name", "movietitle", "moviename", "itemname", "productname", "filmtitle", "label"},
    "genres": {"genres", "genre", "category", "categories", "tags", "tag"},
}


def _listed(names: list[str], room: int = 160) -> str:
    """Header names as a message lists them: quoted, the first ``room`` characters' worth."""
    shown: list[str] = []
    for name in names:
        if shown and sum(len(s) + 2 for s in shown) + len(_shown(name)) > room:
            return ", ".join(shown) + f" and {len(names) - len(shown)} more"
        shown.append(_shown(name))
    return ", ".join(shown)


def _columns_template(kind: str) -> str:
    return f"--columns FIELD=NAME,... (fields: {', '.join(_FIELDS[kind])})"


def _guess_columns(kind: str, names: list[str]) -> str | None:
    """``field=name,...`` for the header ``names``, where every required field has a
    column with a telling name; else None."""
    used: set[int] = set()
    pairs = []
    for field in _FIELDS[kind]:
        synonyms = _SYNONYMS[field] | ({"id"} if kind == "movies" and field == "movie" else set())
        for i, name in enumerate(names):
            if i not in used and re.sub(r"[\s_.-]", "", name.lower()) in synonyms and len(name) <= 40:
                used.add(i)
                pairs.append(f"{field}={name.strip()}")
                break
        else:
            if field in _FIELDS[kind][: _REQUIRED[kind]]:
                return None
    return ",".join(pairs)


def _layout_hint(kind: str, first: str) -> str:
    """What to pass for a first line no built-in format knows: the --columns (and
    --delimiter) that read it, where its names tell; --no-header where it is data."""
    def split(sep: str) -> list[str]:
        try:
            return [cell.strip() for cell in next(csv.reader([first], delimiter=sep), [])]
        except csv.Error:  # a carriage return inside the line: refused anyway, by its reason
            return first.split(sep)

    sep = max(",;\t|", key=lambda s: len(split(s)))  # the first of the most
    cells = split(sep)
    delimiter = "" if sep == "," else " --delimiter " + ("tab" if sep == "\t" else shlex.quote(sep))
    required = _FIELDS[kind][: _REQUIRED[kind]]
    if re.match(r"[+-]?[0-9]", first):
        if len(cells) < len(required):
            return "use --format"
        return f"use --format, or, if its columns are {', '.join(required)} in that order: --no-header{delimiter}"
    guess = _guess_columns(kind, cells)
    if guess is None:  # the fields, where the line reads as names (not junk, which fills the message)
        plain = first.isascii() and first.isprintable() and len(first) <= 80
        return f"use --format, or {_columns_template(kind)} with the header's names" if plain else "use --format"
    return f"use --format, or name the columns: --columns {shlex.quote(guess)}{delimiter}"


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


# A byte-order mark says how the file is encoded, whatever its format's usual encoding
# (spreadsheets save "Unicode text" as UTF-16 with one).  UTF-32's marks come first:
# little-endian UTF-32's starts with little-endian UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_NUL_REASON = "has a NUL byte (0x00): not a text file, or UTF-16 without a byte-order mark; save it as UTF-8"
_BOM_INSIDE_REASON = "a byte-order mark (U+FEFF) inside the file, as joining files leaves; remove it"


def _encoding(data: bytes, default: str) -> str:
    """The encoding the file's byte-order mark names, else ``default``."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return default


def _detect(path: Path, data: bytes, layouts: dict[str, _Layout], kind: str) -> str:
    encoding = _encoding(data, "latin-1")  # without a mark: any byte decodes, and headers are ASCII
    if encoding == "latin-1":
        end = data.find(b"\n")
        first = data[: end if end >= 0 else len(data)].decode("latin-1")
    else:  # the first line of a multi-byte encoding; a cut character at the end is harmless
        first = data[:65536].decode(encoding, errors="replace").split("\n", 1)[0]
    if "\x00" in first:
        raise InputError(path, _NUL_REASON, 1)
    first = first.lstrip("\ufeff\xef\xbb\xbf").strip()
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
        f"(expected {expected}); {_layout_hint(kind, first)}",
        1,
    )


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        name = encoding.removesuffix("-sig").upper()
        raise InputError(path, f"not valid {name} text (byte 0x{data[exc.start]:02x})", line) from None


def _parse(path: Path, data: bytes, layout: _Layout) -> tuple[pd.DataFrame, np.ndarray]:
    """Split into string fields; returns the table and each row's line number in the file."""
    body, starts, counts, lines = _records(path, data, layout)
    first = 0
    if layout.header is not None:
        first = int(starts[1]) if len(starts) > 1 else len(body)
        starts, counts, lines = starts[1:], counts[1:], lines[1:]
    if len(starts) == 0:
        raise InputError(path, "the file has a header but no data rows")
    _check_counts(path, counts, lines, layout.fields)
    # Only the data rows go to the tokenizer, with the columns named: a header with more
    # or fewer names than the rows have fields cannot shift or drop a column.
    return _tokenize(path, body[first:], layout, layout.fields, len(lines)), lines


def _records(
    path: Path, data: bytes, layout: _Layout, trailing: str = "\r\n\t "
) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The file decoded and checked, as UTF-8 bytes, with every record's start offset,
    number of fields and line number.  The ``trailing`` characters at its end are dropped."""
    text = _decode(path, data, _encoding(data, layout.encoding)).rstrip(trailing)
    if not text:
        raise InputError(path, "the file is empty")
    # Characters the tokenizer would read differently from the checks below (a NUL; a
    # byte-order mark, which it drops at the start of its input only) are refused.
    for char, reason in (("\x00", _NUL_REASON), ("\ufeff", _BOM_INSIDE_REASON)):
        at = text.find(char)
        if at >= 0:
            raise InputError(path, reason, text.count("\n", 0, at) + 1)
    # A forced format with a header must not take a row of data for it (and drop it).
    if layout.header is not None and re.match(r"[ \t]*[+-]?[0-9]", text):
        raise InputError(
            path, f"expected the header line {','.join(layout.header)}, found data (is this another --format?)", 1
        )
    # Offsets and line numbers are counted in UTF-8 bytes: delimiters, quotes and line
    # breaks are ASCII, so they are single bytes whatever the file's encoding.
    body = text.encode("utf-8", errors="replace")
    starts, counts = _record_field_counts(path, body, layout)
    return body, starts, counts, _line_numbers(body, starts)


def _check_counts(path: Path, counts: np.ndarray, lines: np.ndarray, fields: int, why: str = "") -> None:
    """Every record has ``fields`` fields, else the first that has not is refused."""
    bad = (counts != fields) | (counts == 0)
    if bad.any():
        i = int(np.argmax(bad))
        reason = "empty line" if counts[i] == 0 else f"expected {fields} fields{why}, found {counts[i]}"
        raise InputError(path, reason, int(lines[i]))


def _tokenize(path: Path, body: bytes, layout: _Layout, fields: int, records: int) -> pd.DataFrame:
    """The fields of ``body``'s records (each of ``fields`` fields, as checked) as strings,
    columns numbered from 0."""
    table = pd.read_csv(
        io.BytesIO(body),
        sep=layout.sep,
        header=None,
        names=list(range(fields)),
        encoding="utf-8",
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        index_col=False,
        quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
        engine="c",
    )
    if len(table) != records:  # cannot happen if the counts above agree; keep it loud
        raise InputError(path, f"parsed {len(table)} rows but the file has {records} records")
    return table


def _record_field_counts(path: Path, body: bytes, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and number of fields of every record, without a Python loop per line.

    Delimiters and line breaks inside quoted fields do not count (for quoted formats),
    read as the tokenizer that splits the fields reads quotes, so both agree on every
    record.  An empty record (blank line) has 0 fields.  A quoted field that never
    closes is refused, and so is a carriage return that does not end a line: outside
    quotes the tokenizer would break the line there, and inside them PostgreSQL's COPY
    would (the bulk writer does not quote a lone one).
    """
    raw = np.frombuffer(body, dtype=np.uint8)
    returns = np.flatnonzero(raw == _CR)
    stray = returns[raw[np.minimum(returns + 1, len(raw) - 1)] != _NEWLINE]
    if len(stray):
        line = body.count(b"\n", 0, int(stray[0])) + 1
        raise InputError(path, "a carriage return (\\r) inside a line; lines must end in \\n or \\r\\n", line)
    sep = ord(layout.sep)
    marks = np.flatnonzero((raw == sep) | (raw == _NEWLINE))
    if layout.quoted and b'"' in body:
        outside, unclosed, trailing = _outside_quotes(raw, marks, sep)
        if unclosed is not None:
            line = body.count(b"\n", 0, unclosed) + 1
            raise InputError(path, 'a quoted field starts here and never ends (unbalanced ")', line)
        if trailing is not None:
            line = body.count(b"\n", 0, trailing) + 1
            raise InputError(path, 'text after the closing quote of a field (write "ab""c" for ab"c)', line)
        marks = marks[outside]
    kinds = raw[marks]
    breaks = marks[kinds == _NEWLINE]
    starts = np.concatenate([[0], breaks + 1])
    delims = marks[kinds == sep]
    counts = np.bincount(np.searchsorted(breaks, delims), minlength=len(starts)) + 1
    ends = np.concatenate([breaks, [len(raw)]])
    length = ends - starts
    # A record that is empty, or only "\r", is a blank line.
    lone_cr = (length == 1) & (raw[np.minimum(starts, len(raw) - 1)] == _CR)
    counts[(length == 0) | lone_cr] = 0
    return starts, counts


def _outside_quotes(
    raw: np.ndarray, positions: np.ndarray, sep: int
) -> tuple[np.ndarray, int | None, int | None]:
    """Whether each byte at ``positions`` (none of them a quote) lies outside quoted
    fields, read as the CSV tokenizer reads quotes; the offset of the quote that opens a
    field left open at the end (None if every quoted field closes); and the offset of
    the first text after a closing quote (``"ab"c``, which lenient readers silently
    join into ``abc``; None if every closing quote ends its field).

    A quote opens a quoted field only at the start of a field; elsewhere in an unquoted
    field it is a literal character, and inside a quoted field ``""`` is an escaped quote.
    So a run of consecutive quotes acts on the state (in a quoted field or not) in one of
    three ways: an odd run at the start of a field toggles it (opens a field, or ends one
    whose text ends in escaped quotes); an odd run elsewhere leaves it outside (it closes
    the field, or is literal text); an even run changes nothing (escaped quotes inside;
    an empty field or literal text outside).  Toggles since the last reset, counted with
    cumulative sums, give the state after every run: no loop over the runs.
    """
    quotes = np.flatnonzero(raw == _QUOTE)
    new_run = np.ones(len(quotes), dtype=bool)
    new_run[1:] = np.diff(quotes) > 1
    run_starts = quotes[new_run]
    odd = np.diff(np.append(np.flatnonzero(new_run), len(quotes))) % 2 == 1
    before = raw[np.maximum(run_starts - 1, 0)]
    at_field_start = (run_starts == 0) | (before == sep) | (before == _NEWLINE)
    toggles = np.cumsum(at_field_start & odd)
    reset = np.where(odd & ~at_field_start, np.arange(len(run_starts)), -1)
    last_reset = np.maximum.accumulate(reset)
    inside = (toggles - np.where(last_reset >= 0, toggles[np.maximum(last_reset, 0)], 0)) % 2 == 1
    run = np.searchsorted(run_starts, positions, side="right") - 1
    outside = (run < 0) | ~inside[np.maximum(run, 0)]
    unclosed = None
    if inside[-1]:
        opened = inside & ~np.concatenate([[False], inside[:-1]])
        unclosed = int(run_starts[np.flatnonzero(opened)[-1]])
    # A run that closes a quoted field must end the field: a delimiter, a line end or EOF.
    closing = np.concatenate([[False], inside[:-1]]) & ~inside
    run_ends = run_starts + np.diff(np.append(np.flatnonzero(new_run), len(quotes)))
    follower = raw[np.minimum(run_ends, len(raw) - 1)]
    ends_field = (run_ends >= len(raw)) | (follower == sep) | (follower == _NEWLINE) | (follower == _CR)
    bad = np.flatnonzero(closing & ~ends_field)
    return outside, unclosed, (int(run_ends[bad[0]]) if len(bad) else None)


def _line_numbers(body: bytes, starts: np.ndarray) -> np.ndarray:
    raw = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(raw == _NEWLINE)
    return np.searchsorted(newlines, starts) + 1


def _shown(raw: str) -> str:
    """A field as a message quotes it: repr, cut short (a field can be megabytes of junk)."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "..."


def _numbers(path: Path, column: pd.Series, lines: np.ndarray, what: str) -> np.ndarray:
    stripped = column.str.strip()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raw = stripped.iloc[i]
        if raw == "":
            reason = f"missing {what}"
        elif np.isinf(values[i]):
            reason = f"{what} {_shown(raw)} is not a finite number"
        else:
            reason = f"{what} {_shown(raw)} is not a number"
        raise InputError(path, reason, int(lines[i]))
    return values


BIGINT_MAX = "9223372036854775807"
BIGINT_MIN_DIGITS = "9223372036854775808"  # -2^63 is a BIGINT too


def _ids(path: Path, column: pd.Series, lines: np.ndarray, what: str, ids: str) -> np.ndarray:
    """Integer ids, or with ``ids="text"`` the application's keys, exactly as given: any
    text but empty, and none with surrounding whitespace (refused, never stripped: " a"
    and "a" would be two keys)."""
    if ids != "text":
        return _integers(path, column, lines, what)
    stripped = column.str.strip()
    bad = ((stripped == "") | (stripped != column)).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))  # the first line with either fault
        raw = column.iloc[i]
        reason = f"missing {what}" if stripped.iloc[i] == "" else (
            f"{what} {_shown(raw)} has surrounding whitespace; recsql stores keys exactly as given "
            "(so ' a' and 'a' would be different keys): remove the whitespace, including any spaces "
            "after a delimiter (as in a, b)"
        )
        raise InputError(path, reason, int(lines[i]))
    return column.to_numpy(dtype=object)


def _integers(path: Path, column: pd.Series, lines: np.ndarray, what: str, *, negative: bool = False) -> np.ndarray:
    """Whole numbers in ASCII digits, parsed exactly (never through a float: ids above
    2^53 stay distinct), within the 64-bit range the tables store; negative ones only
    where ``negative``."""
    stripped = column.str.strip()

    def refuse(bad: np.ndarray, reason: str) -> None:
        if bad.any():
            i = int(np.argmax(bad))
            raw = stripped.iloc[i]
            shown = raw if len(raw) <= 40 else raw[:40] + "..."
            raise InputError(path, f"missing {what}" if raw == "" else reason.format(raw=shown), int(lines[i]))

    # [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
    whole = stripped.str.fullmatch(r"[+-]?[0-9]+").to_numpy(dtype=bool)
    refuse(~whole, f"{what} {{raw!r}} is not a whole number")
    digits = stripped.str.lstrip("+-").str.lstrip("0")
    length = digits.str.len().to_numpy()
    limit = np.where(stripped.str.startswith("-").to_numpy(dtype=bool), BIGINT_MIN_DIGITS, BIGINT_MAX)
    refuse((length > 19) | ((length == 19) & (digits.to_numpy(dtype=str) > limit)),
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
    pairs = {}
    try:
        text = genre_file.read_bytes().decode("latin-1")
    except OSError as exc:
        raise InputError(genre_file, f"cannot read: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):  # 19 lines: no bulk path here
        if "|" in line:
            name, _, index = line.rpartition("|")
            if not re.fullmatch(r"[0-9]+", index.strip()) or int(index) >= len(ML100K_GENRES) or int(index) in pairs:
                raise InputError(genre_file, f"expected name|index with a new index 0-18, found {line[:80]!r}", number)
            pairs[int(index)] = name
    if len(pairs) != len(ML100K_GENRES):
        raise InputError(genre_file, f"expected {len(ML100K_GENRES)} genres, found {len(pairs)}")
    return tuple(pairs[i] for i in range(len(ML100K_GENRES)))

"""The file formats recsql knows, and telling which one a file is.

Supported formats (auto-detected from the first line, or forced with ``format=``):

=================  ==========================================  ==================================
format             ratings                                     movies
=================  ==========================================  ==================================
``tutorial``       ``user_id,movie_id,value`` (CSV, header)    ``movie_id,title,genre``
``movielens``      ``userId,movieId,rating,timestamp``         ``movieId,title,genres`` (``|``)
``movielens-100k`` ``u.data``: user, item, rating, timestamp   ``u.item``: ``|``-separated latin-1,
                   tab-separated, no header                    19 genre flags (names: ``u.genre``)
=================  ==========================================  ==================================

Detection reads the first line only (no tokenizer: a header is plain ASCII names); where
no format matches, the refusal suggests the options that would read the file
(:func:`layout_hint`).  The bytes' encoding comes from a byte-order mark, else the
format's own.  Tokenizing is :mod:`recsql.data.reader`'s job.
"""

from __future__ import annotations

import codecs
import csv
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from recsql.errors import InputError

FORMATS: tuple[str, ...] = ("tutorial", "movielens", "movielens-100k")

# The 19 genres of MovieLens 100K in flag order, used when u.genre is not beside u.item.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class Layout:
    """How one format lays out one kind of file."""

    sep: str
    header: tuple[str, ...] | None  # expected header (lower-cased), None if headerless
    fields: int
    encoding: str = "utf-8-sig"
    quoted: bool = True


RATING_LAYOUTS = {
    "tutorial": Layout(",", ("user_id", "movie_id", "value"), 3),
    "movielens": Layout(",", ("userid", "movieid", "rating", "timestamp"), 4),
    "movielens-100k": Layout("\t", None, 4, quoted=False),
}
MOVIE_LAYOUTS = {
    "tutorial": Layout(",", ("movie_id", "title", "genre"), 3),
    "movielens": Layout(",", ("movieid", "title", "genres"), 3),
    "movielens-100k": Layout("|", None, 24, encoding="latin-1", quoted=False),
}

# recsql's fields of each kind of file, in the built-in formats' column order; the
# first REQUIRED of them must be in every file.
RATING_FIELDS: tuple[str, ...] = ("user", "movie", "rating", "time")
MOVIE_FIELDS: tuple[str, ...] = ("movie", "title", "genres")
FIELDS = {"ratings": RATING_FIELDS, "movies": MOVIE_FIELDS}
REQUIRED = {"ratings": 3, "movies": 2}
LAYOUTS = {"ratings": RATING_LAYOUTS, "movies": MOVIE_LAYOUTS}

NUL_REASON = "has a NUL byte (0x00): not a text file, or UTF-16 without a byte-order mark; save it as UTF-8"
BOM_INSIDE_REASON = "a byte-order mark (U+FEFF) inside the file, as joining files leaves; remove it"

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


def encoding(data: bytes, default: str) -> str:
    """The encoding the file's byte-order mark names, else ``default``."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return default


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an InputError where it is missing, unreadable or blank."""
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


def layout(kind: str, format: str, path: Path) -> Layout:
    """The layout of a named format, refused with the choices where there is none."""
    layouts = LAYOUTS[kind]
    if format not in layouts:
        raise InputError(path, f"unknown format {format!r}; choose from {', '.join(layouts)}")
    return layouts[format]


def detect(path: Path, data: bytes, kind: str) -> str:
    """The format whose header (or field count, for headerless ones) the first line has."""
    layouts = LAYOUTS[kind]
    found = encoding(data, "latin-1")  # without a mark: any byte decodes, and headers are ASCII
    if found == "latin-1":
        end = data.find(b"\n")
        first = data[: end if end >= 0 else len(data)].decode("latin-1")
    else:  # the first line of a multi-byte encoding; a cut character at the end is harmless
        first = data[:65536].decode(found, errors="replace").split("\n", 1)[0]
    if "\x00" in first:
        raise InputError(path, NUL_REASON, 1)
    first = first.lstrip("\ufeff\xef\xbb\xbf").strip()
    fields = [f.strip().lower() for f in first.split(",")]
    for name, lay in layouts.items():
        if lay.header is not None and tuple(fields[: len(lay.header)]) == lay.header:
            return name
        if lay.header is None and len(first.split(lay.sep)) == lay.fields:
            return name
    expected = "; ".join(
        f"{name}: " + (",".join(lay.header) if lay.header else f"{lay.fields} {lay.sep!r}-separated fields")
        for name, lay in layouts.items()
    )
    raise InputError(
        path,
        f"cannot tell the {kind} format from the first line {shown(first)} "
        f"(expected {expected}); {layout_hint(kind, first)}",
        1,
    )


def shown(text: str, limit: int = 40) -> str:
    """Text as a message quotes it: repr, cut short (a field can be megabytes of junk,
    and a misread encoding's line is all escapes, each character quoted as up to ten)."""
    cut = text[:limit]
    while len(repr(cut)) > 2 * limit + 2:
        cut = cut[: len(cut) // 2]
    return repr(cut) + ("..." if len(cut) < len(text) else "")


# ------------------------------------------------------------------ suggested options

# Header names (lower-cased, without spaces, _, - and .) that say which field a column
# holds, for the --columns a refusal suggests.  Only a full set of required fields makes
# a suggestion.
_SYNONYMS = {
    "user": {
        "user",
        "userid",
        "users",
        "customer",
        "customerid",
        "client",
        "clientid",
        "member",
        "memberid",
        "reviewer",
        "reviewerid",
        "rater",
        "raterid",
        "account",
        "accountid",
        "person",
        "personid",
        "uid",
        "visitor",
        "visitorid",
        "buyer",
        "buyerid",
    },
    "movie": {
        "movie",
        "movieid",
        "movies",
        "item",
        "itemid",
        "items",
        "product",
        "productid",
        "film",
        "filmid",
        "iid",
        "mid",
        "sku",
        "asin",
        "book",
        "bookid",
        "article",
        "articleid",
        "video",
        "videoid",
        "show",
        "showid",
        "content",
        "contentid",
    },
    "rating": {"rating", "ratings", "value", "stars", "star", "score", "rate", "grade", "vote", "points"},
    "time": {"timestamp", "time", "ts", "ratedat", "createdat", "created", "unixtime", "epoch"},
    "title": {"title", "name", "movietitle", "moviename", "itemname", "productname", "filmtitle", "label"},
    "genres": {"genres", "genre", "category", "categories", "tags", "tag"},
}


def columns_template(kind: str) -> str:
    return f"--columns FIELD=NAME,... (fields: {', '.join(FIELDS[kind])})"


def guess_columns(kind: str, names: list[str]) -> str | None:
    """``field=name,...`` for the header ``names``, where every required field has a
    column with a telling name; else None."""
    used: set[int] = set()
    pairs = []
    for field in FIELDS[kind]:
        synonyms = _SYNONYMS[field] | ({"id"} if kind == "movies" and field == "movie" else set())
        for i, name in enumerate(names):
            if i not in used and re.sub(r"[\s_.-]", "", name.lower()) in synonyms and len(name) <= 40:
                used.add(i)
                pairs.append(f"{field}={name.strip()}")
                break
        else:
            if field in FIELDS[kind][: REQUIRED[kind]]:
                return None
    return ",".join(pairs)


def layout_hint(kind: str, first: str) -> str:
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
    required = FIELDS[kind][: REQUIRED[kind]]
    if re.match(r"[+-]?[0-9]", first):
        if len(cells) < len(required):
            return "use --format"
        return f"use --format, or, if its columns are {', '.join(required)} in that order: --no-header{delimiter}"
    guess = guess_columns(kind, cells)
    if guess is None:  # the fields, where the line reads as names (not junk, which fills the message)
        plain = first.isascii() and first.isprintable() and len(first) <= 80
        return f"use --format, or {columns_template(kind)} with the header's names" if plain else "use --format"
    return f"use --format, or name the columns: --columns {shlex.quote(guess)}{delimiter}"

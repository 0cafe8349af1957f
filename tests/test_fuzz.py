"""Input that cannot corrupt: the importers and the source mapping, fuzzed (hypothesis).

Whatever a ratings or movies file holds (malformed rows, other encodings, byte-order
marks, NUL bytes, unbalanced quotes, huge, negative or non-finite numbers, ids beyond 64
bits, junk bytes, empty files, headers only, wrong column counts), an import ends in one
of two ways:

* imported exactly as the file says: the new rows equal what a reference reading of the
  file (Python's csv module read row by row, and the format's rules) finds,
  ids as exact integers; or
* refused with a clear message (a RecsqlError; an InputError names the file, and the
  line where there is one; the CLI exits non-zero with one line and no traceback), and
  the database is exactly as before (rows are pre-loaded, so "unchanged" means something).

A file the reference reads as valid must be imported, except that a rating outside the
usual 1-5 scale may be refused (the rating scale check), with a RecsqlError.

Most examples go through the Python API on SQLite (fast); fewer go through the CLI on
SQLite and PostgreSQL.  The source mapping (TOML) either gives a valid Source or raises
InvalidParameter, never another exception.  The bugs the fuzzing found are pinned by
plain example tests at the end, so they stay fixed without hypothesis.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, text

import recsql
from recsql.cli import cli
from recsql.data.files import FORMATS, ML100K_GENRES, MOVIE_LAYOUTS, read_movies_file, read_ratings_file
from recsql.data.reader import read_table
from recsql.data.source import Source
from recsql.db import tables
from recsql.db.tables import Movie, Rating
from recsql.errors import InputError, InvalidParameter
from tests.conftest import Cli

API = settings(max_examples=200, deadline=None, derandomize=True, database=None)
CLI = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOML = settings(max_examples=300, deadline=None, derandomize=True, database=None)

PRELOADED_RATINGS = [(7, 8, 4.0, None), (9, 8, 1.0, 86400), (2**62, 3, 5.0, -1)]
PRELOADED_MOVIES = [(3, "Three", None), (8, "Eight, the movie", "Drama|Crime")]
# The catalogue's stored rating scale, where this version has one (ratings outside it are refused).
SCALE_TABLE = getattr(tables, "RatingScale", None)
PRELOADED_SCALE = [(1.0, 5.0)] if SCALE_TABLE is not None else []
BIGINT = (-(2**63), 2**63 - 1)
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

# ------------------------------------------------------------------ reference reading

HEADERS = {
    ("ratings", "tutorial"): ("user_id", "movie_id", "value"),
    ("ratings", "movielens"): ("userid", "movieid", "rating", "timestamp"),
    ("movies", "tutorial"): ("movie_id", "title", "genre"),
    ("movies", "movielens"): ("movieid", "title", "genres"),
}
FIELDS = {
    ("ratings", "tutorial"): 3,
    ("ratings", "movielens"): 4,
    ("ratings", "movielens-100k"): 4,
    ("movies", "tutorial"): 3,
    ("movies", "movielens"): 3,
    ("movies", "movielens-100k"): 24,
}
BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
WHOLE = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _sep(kind: str, format: str) -> str:
    if format != "movielens-100k":
        return ","
    return "\t" if kind == "ratings" else "|"


class Invalid(Exception):
    """The reference reading finds no single clear meaning in the file."""


def reference(data: bytes, kind: str, format: str | None) -> list[tuple]:
    """The rows a file says, read independently of recsql: decoded by its byte-order mark
    (else UTF-8, latin-1 for u.item), split by the csv module, every field checked.
    Raises Invalid where the file should be refused."""
    default = "latin-1" if kind == "movies" and format == "movielens-100k" else "utf-8"
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    try:
        decoded = data.decode(encoding or default)
    except UnicodeDecodeError:
        if format is not None or encoding is not None:
            raise Invalid("not text in its encoding") from None
        decoded = ""  # the format is unknown yet: decide below, after detection
    first = (decoded or data.decode("latin-1")).split("\n", 1)[0].lstrip("\ufeff").strip()
    if format is None:
        if "\x00" in first:
            raise Invalid("NUL")
        fields = [f.strip().lower() for f in first.split(",")]
        for name in FORMATS:
            header = HEADERS.get((kind, name))
            if header is not None and tuple(fields[: len(header)]) == header:
                format = name
                break
            if header is None and len(first.split(_sep(kind, name))) == FIELDS[(kind, name)]:
                format = name
                break
        else:
            raise Invalid("format not recognised")
        return reference(data, kind, format)
    text_ = decoded.rstrip("\r\n\t ")
    if not text_ or "\x00" in text_ or "\ufeff" in text_:
        raise Invalid("empty, NUL or a byte-order mark inside")
    header = HEADERS.get((kind, format))
    if header is not None and re.match(r"[ \t]*[+-]?[0-9]", text_):
        raise Invalid("data where the header should be")
    sep, n = _sep(kind, format), FIELDS[(kind, format)]
    quoting = csv.QUOTE_NONE if format == "movielens-100k" else csv.QUOTE_MINIMAL
    try:
        rows = list(csv.reader(io.StringIO(text_, newline=""), delimiter=sep, quoting=quoting, strict=True))
    except csv.Error:
        raise Invalid("csv error") from None
    if re.search(r"\r(?!\n)", text_):  # refused even inside quotes (PostgreSQL's COPY breaks there)
        raise Invalid("carriage return inside a line")
    if header is not None:
        rows = rows[1:]
    if not rows or any(len(row) != n for row in rows):
        raise Invalid("no rows, or a wrong number of fields")
    return [_ratings_row(row) for row in rows] if kind == "ratings" else _movies_rows(rows, format)


def _int(field: str, negative: bool = False) -> int:
    field = field.strip()
    if not WHOLE.fullmatch(field):
        raise Invalid(f"not a whole number: {field!r}")
    value = int(field)
    if not BIGINT[0] <= value <= BIGINT[1] or (value < 0 and not negative):
        raise Invalid(f"out of range: {value}")
    return value


def _float(field: str) -> float:
    field = field.strip()
    if not DECIMAL.fullmatch(field) or not math.isfinite(float(field)):
        raise Invalid(f"not a finite number: {field!r}")
    return float(field)


def _ratings_row(row: list[str]) -> tuple:
    return (_int(row[0]), _int(row[1]), _float(row[2]), _int(row[3], negative=True) if len(row) == 4 else None)


def _movies_rows(rows: list[list[str]], format: str) -> list[tuple]:
    found = []
    for row in rows:
        title = row[1].strip()
        if not title:
            raise Invalid("missing title")
        if format == "movielens-100k":
            flags = [f.strip() for f in row[5:24]]
            if set(flags) - {"0", "1"}:
                raise Invalid("genre flags")
            genres = "|".join(name for name, flag in zip(ML100K_GENRES, flags) if flag == "1") or None
        else:
            genres = row[2].strip() or None
        found.append((_int(row[0]), title, genres))
    if len({r[0] for r in found}) != len(found):
        raise Invalid("a movie id twice")
    return found


# ------------------------------------------------------------------ generated files

SPECIAL_BYTES = [b'"', b"\r", b"\n", b"\x00", b",", b"\t", b"|", b"\xef\xbb\xbf", b"\xff", b"\xe9", b'""', b" "]
# The first ten decode as the importer reads them (a byte-order mark, or UTF-8); the rest
# may not.
ENCODINGS = ["utf-8"] * 6 + ["utf-8-sig", "utf-16", "utf-32", "utf-8", "latin-1", "utf-16-le", "utf-16-be", "cp1252"]


def _mostly(good: st.SearchStrategy[str], bad: st.SearchStrategy[str], one_bad_in: int = 12) -> st.SearchStrategy[str]:
    """``good`` most of the time: a file of several rows is then often valid as a whole.
    (Bad on a middle number: hypothesis favours the ends of a range.)"""
    return st.integers(0, one_bad_in - 1).flatmap(lambda k: bad if k == one_bad_in // 2 else good)


def _spelled(n: int) -> st.SearchStrategy[str]:
    """A whole number as files spell it (signs, padding, leading zeros)."""
    return st.sampled_from(["{}", "{}", "+{}", " {} ", "0{}", "\t{}", "{}\xa0"]).map(lambda f: f.format(n))


ids = _mostly(
    st.one_of(st.integers(0, 1000), st.integers(2**53, 2**63 - 1)).flatmap(_spelled),
    st.one_of(
        st.sampled_from(
            [
                str(2**63),
                str(2**64),
                str(-(2**63)),
                "-1",
                "1" * 25,
                "",
                " ",
                "1.5",
                "1e3",
                "5.0",
                "abc",
                "١٢",
                "１２",
                "0x1F",
                "nan",
                "1_000",
                "+-1",
                "- 1",
                "5\x00",
                "\ufeff5",
                "1 2",
            ]
        ),
        st.integers(-(2**65), 2**65).map(str),
        st.text(max_size=5),
    ),
)
values = _mostly(
    st.one_of(
        st.sampled_from(["1", "2", "3", "4", "5", "4.5", "3.", ".5e1", "+3", " 2 ", "1e0", "05", "4.0000000000000001"]),
        st.floats(min_value=1, max_value=5).map(str),
    ),
    st.one_of(
        st.sampled_from(
            [
                "0.5",
                "0",
                "-0",
                "-2",
                "1e308",
                "1e-400",
                "6",
                "1e999",
                "-1e999",
                "inf",
                "-inf",
                "Infinity",
                "nan",
                "NaN",
                "",
                "abc",
                "5_0",
                "٣",
                "0x10",
                "4,5",
                '"4"',
                "4 5",
                "1e",
                "e1",
                "--1",
                "1.e0",
                ".e1",
                "4\x00",
            ]
        ),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=4),
    ),
)
timestamps = _mostly(
    st.one_of(st.integers(0, 2**31), st.integers(-(2**63), 2**63 - 1)).map(str),
    st.sampled_from([str(-(2**63)), str(-(2**63) - 1), str(2**63), "", "1.5", "-86400", "1e9", "x"]),
)
titles = _mostly(
    st.sampled_from(
        [
            "Toy Story (1995)",
            "American President, The (1995)",
            'Say "Cheese"',
            "Misérables, Les",
            "  spaced  ",
            "a\nb",
            "x\r\ny",
            "日本",
            'quote"',
            "pipe|title",
            "tab\there",
            "\\.",
        ]
    ),
    st.one_of(st.sampled_from(["", " ", "a\rb", "\x00"]), st.text(max_size=12)),
    one_bad_in=5,
)
genres = _mostly(
    st.sampled_from(["Drama", "Adventure|Animation", "", "crime drama, western", " Comedy "]), st.text(max_size=6)
)


def _cell(value: str, sep: str, quoted: bool, quote: bool) -> str:
    """One field as a CSV writer would write it (quoted where needed, or on request)."""
    if quoted and (quote or any(c in value for c in (sep, '"', "\n", "\r"))):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def files(draw: st.DrawFn, kind: str) -> tuple[bytes, str | None]:
    """A ratings or movies file (bytes) and the --format to pass (None: detect).

    About half are written cleanly (odd fields only: weird numbers, quoted cells, titles
    with commas, quotes and line breaks, any encoding with a byte-order mark); the rest
    also get broken structure (a missing header, a wrong field count, a blank line, the
    wrong --format, an encoding without a mark) and junk bytes.
    """
    format = draw(st.sampled_from(FORMATS))
    broken = draw(st.booleans())
    sep, n = _sep(kind, format), FIELDS[(kind, format)]
    quoted = format != "movielens-100k"
    sloppy = broken and draw(st.booleans())  # cells written as they come: no quotes, or a space before them
    rows = []
    for i in range(draw(st.integers(0 if broken else 1, 5))):
        if kind == "ratings":
            cells = [draw(ids), draw(ids), draw(values)] + ([draw(timestamps)] if n == 4 else [])
        elif format == "movielens-100k":
            flags = draw(st.lists(st.sampled_from(["0", "1"]), min_size=19, max_size=19))
            cells = [draw(ids), draw(titles), "01-Jan-1995", "", "http://x", *flags]
        else:
            cells = [draw(st.one_of(st.just(str(i + 1)), ids)), draw(titles), draw(genres)]
        if broken and draw(st.integers(0, 4)) == 0:  # a wrong number of fields
            cells = cells[:-1] if draw(st.booleans()) else [*cells, "x"]
        if sloppy:
            rows.append(sep.join(draw(st.sampled_from(["{}", " {}", '"{}"', ' "{}"'])).format(c) for c in cells))
        else:
            rows.append(sep.join(_cell(c, sep, quoted, draw(st.integers(0, 5)) == 0) for c in cells))
    header = HEADERS.get((kind, format))
    if header is not None and not (broken and draw(st.integers(0, 3)) == 0):
        names = list(header)
        if draw(st.booleans()):
            names = [{"userid": "userId", "movieid": "movieId"}.get(name, name) for name in names]
        rows.insert(0, sep.join(names))
    if broken and rows and draw(st.integers(0, 3)) == 0:
        rows.insert(draw(st.integers(0, len(rows))), draw(st.sampled_from(["", " ", "\r"])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    content = newline.join(rows) + (newline if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(ENCODINGS if broken else ENCODINGS[:10]))
    data = content.encode(encoding, errors="replace")
    for _ in range(draw(st.integers(0, 3)) if broken else 0):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["insert", "insert", "delete", "truncate", "random"]))
        if how == "insert":
            data = data[:at] + draw(st.sampled_from(SPECIAL_BYTES)) + data[at:]
        elif how == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 4)) :]
        elif how == "truncate":
            data = data[:at]
        else:
            data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    forced = draw(st.sampled_from([None, format, *(FORMATS if broken else ())]))
    return data, forced


# ------------------------------------------------------------------ the property


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Rating))
        conn.execute(delete(Movie))
        conn.execute(
            insert(Rating), [dict(zip(("user_id", "movie_id", "value", "rated_at"), r)) for r in PRELOADED_RATINGS]
        )
        conn.execute(insert(Movie), [dict(zip(("movie_id", "title", "genres"), m)) for m in PRELOADED_MOVIES])
        if SCALE_TABLE is not None:
            conn.execute(delete(SCALE_TABLE))
            conn.execute(insert(SCALE_TABLE), [{"id": 1, "low": low, "high": high} for low, high in PRELOADED_SCALE])


State = tuple[list[tuple], list[tuple], list[tuple]]
PRELOADED: State = (PRELOADED_RATINGS, PRELOADED_MOVIES, PRELOADED_SCALE)


def _state(engine: Engine) -> State:
    """Ratings in import order, movies by id, and the rating scale."""
    with engine.connect() as conn:
        ratings = conn.execute(
            select(Rating.user_id, Rating.movie_id, Rating.value, Rating.rated_at).order_by(Rating.id)
        ).all()
        movies = conn.execute(select(Movie.movie_id, Movie.title, Movie.genres).order_by(Movie.movie_id)).all()
        scale = conn.execute(select(SCALE_TABLE.low, SCALE_TABLE.high)).all() if SCALE_TABLE is not None else []
    return [tuple(r) for r in ratings], [tuple(m) for m in movies], [tuple(s) for s in scale]


def _expected(kind: str, rows: list[tuple], replace: bool) -> State:
    if kind == "ratings":
        return (rows if replace else PRELOADED_RATINGS + rows), PRELOADED_MOVIES, PRELOADED_SCALE
    movies = {m[0]: m for m in PRELOADED_MOVIES} | {m[0]: m for m in rows}
    return PRELOADED_RATINGS, sorted(movies.values()), PRELOADED_SCALE


# The refusals that concern the whole file rather than one of its lines.
WHOLE_FILE_REASONS = ("the file is empty", "the file has a header but no data rows")


def _off_scale(kind: str, rows: list[tuple]) -> bool:
    if kind != "ratings" or not PRELOADED_SCALE:
        return False
    low, high = PRELOADED_SCALE[0]
    return any(not low <= r[2] <= high for r in rows)


def check_outcome(
    engine,
    path: Path,
    data: bytes,
    kind: str,
    format: str | None,
    replace: bool,
    error: BaseException | None,
    message: str | None,
    expected: Callable[[], list[tuple]] | None = None,
) -> None:
    """The property: imported exactly as the reference reads the file, or refused with a
    clear message and nothing changed.  ``error``/``message``: what the import raised or
    printed (both None if it succeeded); ``expected``: another reference reading."""
    try:
        rows: list[tuple] | None = expected() if expected is not None else reference(data, kind, format)
    except Invalid:
        rows = None
    after = _state(engine)
    if error is None and message is None:
        event("imported")
        assert rows is not None, f"imported a file the reference refuses: {data!r} -> {after}"
        assert after == _expected(kind, rows, replace), f"wrong import of {data!r}"
        # exact ids: Python ints from the database, not floats that happen to compare equal
        assert all(type(r[0]) is int and type(r[1]) is int for r in after[0])
        assert all(type(m[0]) is int for m in after[1])
        return
    assert after == PRELOADED, f"a refused import changed the database: {data!r}"
    if error is not None:
        assert isinstance(error, InputError), f"{type(error).__name__}: {error} for {data!r}"
        message = str(error)
    assert message is not None
    event("refused: " + re.sub(r"^.*?(, line \d+)?: |\d+|'.*?'|\(.*", "", message)[:40])
    # One short line that starts with the file, then its line unless the reason is the whole file's.
    assert "\n" not in message.strip() and len(message) < 400 + len(str(path)), message
    where = re.match(re.escape(str(path)) + r"(, line (\d+))?: (.*)", message)
    assert where is not None, f"the message does not start with the file: {message}"
    if where.group(1) is None:
        assert where.group(3) in WHOLE_FILE_REASONS, f"no line in {message}"
    else:
        assert 1 <= int(where.group(2)) <= data.count(b"\n") + 1, message
    assert "parsed" not in message, f"the tokenizer and the record counts disagree: {message} for {data!r}"
    if rows is not None:  # a valid file may only be refused for a rating off the stored scale
        assert _off_scale(kind, rows) and "scale" in message, f"refused a valid file {data!r}: {message}"


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory):
    engine = recsql.connect(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'recsql.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.mark.parametrize("kind", ["ratings", "movies"])
@API
@given(data=st.data(), replace=st.booleans())
def test_api_imports_exactly_or_refuses_cleanly(sqlite_engine, files_dir, kind, data, replace):
    content, format = data.draw(files(kind), label="file and --format")
    replace = replace and kind == "ratings"
    path = files_dir / f"{kind}.csv"
    path.write_bytes(content)
    _reset(sqlite_engine)
    error = None
    try:
        if kind == "ratings":
            recsql.import_ratings(sqlite_engine, path, format, replace=replace)
        else:
            recsql.import_movies(sqlite_engine, path, format)
    except Exception as exc:  # noqa: BLE001 - the property says which ones are allowed
        error = exc
    check_outcome(sqlite_engine, path, content, kind, format, replace, error, None)


@pytest.mark.parametrize("kind", ["ratings", "movies"])
@CLI
@given(data=st.data(), replace=st.booleans())
def test_cli_imports_exactly_or_refuses_cleanly(engine, run: Cli, files_dir, kind, data, replace):
    content, format = data.draw(files(kind), label="file and --format")
    replace = replace and kind == "ratings"
    path = files_dir / f"{kind}.csv"
    path.write_bytes(content)
    _reset(engine)
    args = ["import", kind, str(path), *(["--format", format] if format else []), *(["--replace"] if replace else [])]
    result = run.runner.invoke(cli, ["--database-url", run.url, *args])
    if result.exit_code == 0:
        check_outcome(engine, path, content, kind, format, replace, None, None)
        return
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    check_outcome(engine, path, content, kind, format, replace, None, lines[0].removeprefix("Error: "))


@pytest.mark.parametrize(
    "layout", [MOVIE_LAYOUTS["tutorial"], dataclasses.replace(MOVIE_LAYOUTS["movielens-100k"], fields=3)]
)
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(body=st.lists(st.sampled_from(['"', '""', ",", "|", "\n", "\r\n", "a", "1", " "]), max_size=30).map("".join))
def test_records_and_fields_are_split_as_the_csv_module_splits_them(tmp_path_factory, layout, body):
    """The reader's chunked tokenizing, columns and line numbers agree with a plain
    row-by-row reading by the csv module (``line_num`` after each row) on dense quote
    soup: the same rows, the same line numbers, or a refusal where the csv module fails,
    finds a wrong field count, or finds nothing."""
    path = tmp_path_factory.getbasetemp() / "soup.csv"
    content = ("h,h,h\n" if layout.header else "") + body
    quoting = csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE
    expected: list[list[str]] | None
    try:
        reader = csv.reader(
            io.StringIO(content.rstrip("\r\n\t "), newline=""), delimiter=layout.sep, quoting=quoting, strict=True
        )
        expected, lines, last = [], [], 0
        for row in reader:
            expected.append(row)
            lines.append(last + 1)
            last = reader.line_num
        if layout.header:
            expected, lines = expected[1:], lines[1:]
        if not expected or any(len(row) != layout.fields for row in expected):
            expected = None
    except csv.Error:
        expected = None
    try:
        columns, found_lines = read_table(path, content.encode(), layout)
    except InputError as exc:
        assert "parsed" not in str(exc)
        assert expected is None, f"refused {content!r} ({exc}), the csv module reads {expected}"
        return
    rows = [list(row) for row in zip(*(column.fields() for column in columns))]
    assert expected is not None, f"read {content!r} as {rows}; the csv module refuses it"
    assert rows == expected and found_lines.tolist() == lines


# ------------------------------------------------------------------ custom layouts

LAYOUT_FIELDS = {"ratings": ("user", "movie", "rating", "time"), "movies": ("movie", "title", "genres")}
LAYOUT_REQUIRED = {"ratings": 3, "movies": 2}
# Header names: plain, spaced, non-ASCII, case variants, and ones holding a delimiter or a quote.
HEADER_NAMES = st.sampled_from(
    [
        "customer",
        "Customer",
        "item",
        "stars",
        "ts",
        "note",
        "user id",
        "Kunde",
        "ÉTOILES",
        "a;b",
        "x,y",
        'q"uote',
        "p|q",
        "  padded ",
        "1",
        "id",
        "genre",
        "title",
        "",
    ]
)


def custom_reference(data: bytes, kind: str, columns: dict[str, str | int], sep: str, header: bool) -> list[tuple]:
    """The rows a file of a custom layout says, read by the csv module; Invalid where it
    should be refused."""
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), "utf-8")
    try:
        text_ = data.decode(encoding).rstrip("\r\n\t ".replace(sep, ""))
    except UnicodeDecodeError:
        raise Invalid("not text in its encoding") from None
    if not text_ or "\x00" in text_ or "\ufeff" in text_:
        raise Invalid("empty, NUL or a byte-order mark inside")
    try:
        rows = list(csv.reader(io.StringIO(text_, newline=""), delimiter=sep, strict=True))
    except csv.Error:
        raise Invalid("csv error") from None
    if re.search(r"\r(?!\n)", text_):
        raise Invalid("carriage return inside a line")
    n = len(rows[0])
    if n == 0 or any(len(row) != n for row in rows):
        raise Invalid("an empty line, or a wrong number of fields")
    if header:
        names = [name.strip() for name in rows.pop(0)]
        at = {}
        for field, name in columns.items():
            found = [i for i, c in enumerate(names) if c == name] or [
                i for i, c in enumerate(names) if c.casefold() == str(name).casefold()
            ]
            if len(found) != 1:
                raise Invalid(f"column {name!r} not in the header once")
            at[field] = found[0]
        if not rows:
            raise Invalid("no data rows")
    else:
        at = {field: int(position) - 1 for field, position in columns.items()}
        if max(at.values()) >= n:
            raise Invalid("a position beyond the fields")
    if kind == "ratings":
        return [_ratings_row([row[at[f]] for f in ("user", "movie", "rating", "time") if f in at]) for row in rows]
    return _movies_rows(
        [[row[at["movie"]], row[at["title"]], row[at["genres"]] if "genres" in at else ""] for row in rows], "custom"
    )


@st.composite
def custom_files(draw: st.DrawFn, kind: str) -> tuple[bytes, dict[str, str | int], str, bool]:
    """A file of a random layout (fields in any order among extra columns, any delimiter,
    with or without a header) and the columns that name it: often valid, sometimes broken
    (a wrong field count, a name or position the file lacks, junk bytes)."""
    fields = LAYOUT_FIELDS[kind]
    used = list(fields[: LAYOUT_REQUIRED[kind]]) + [f for f in fields[LAYOUT_REQUIRED[kind] :] if draw(st.booleans())]
    n = len(used) + draw(st.integers(0, 2))
    spots = draw(st.permutations(range(n)))[: len(used)]
    sep = draw(st.sampled_from([",", ";", "|", "\t"]))
    header = draw(st.booleans())
    broken = draw(st.integers(0, 2)) == 0
    names = draw(
        st.lists(HEADER_NAMES.filter(str.strip), min_size=n, max_size=n, unique_by=lambda name: name.strip().casefold())
    )
    cell_of = {
        "user": ids,
        "rating": values,
        "time": timestamps,
        "title": titles,
        "genres": genres,
        "movie": ids if kind == "ratings" else st.one_of(st.integers(1, 9).map(str), ids),
    }
    rows = []
    for _ in range(draw(st.integers(0 if broken else 1, 4))):
        cells = [draw(st.one_of(genres, titles)) for _ in range(n)]
        for field, spot in zip(used, spots):
            cells[spot] = draw(cell_of[field])
        if broken and draw(st.integers(0, 3)) == 0:
            cells = cells[:-1] if draw(st.booleans()) else [*cells, "x"]
        rows.append(sep.join(_cell(c, sep, True, draw(st.integers(0, 5)) == 0) for c in cells))
    if header:
        rows.insert(0, sep.join(_cell(name, sep, True, draw(st.integers(0, 3)) == 0) for name in names))
    columns: dict[str, str | int] = {
        field: (names[spot].strip() if header else spot + 1) for field, spot in zip(used, spots)
    }
    if broken and draw(st.integers(0, 3)) == 0:  # a column the file does not have
        columns[used[0]] = "absent" if header else n + 1
    if header and draw(st.booleans()):  # names match whatever their case
        columns = {field: str(name).upper() for field, name in columns.items()}
    content = draw(st.sampled_from(["\n", "\r\n"])).join(rows) + draw(st.sampled_from(["", "\n"]))
    encoding = draw(st.sampled_from(ENCODINGS[:10]))
    data = content.encode(encoding, errors="replace")
    # Junk bytes, in UTF-8 only, never a quote or right after one: text after a closing
    # quote is read leniently (appended to the field), where the strict reference refuses.
    for _ in range(draw(st.integers(0, 2)) if broken and encoding.startswith("utf-8") else 0):
        at = draw(st.integers(0, len(data)))
        if data[at - 1 : at] != b'"':
            data = data[:at] + draw(st.sampled_from([b for b in SPECIAL_BYTES if b'"' not in b])) + data[at:]
    return data, columns, sep, header


@pytest.mark.parametrize("kind", ["ratings", "movies"])
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_any_layout_imports_exactly_or_refuses_cleanly(sqlite_engine, files_dir, kind, data):
    """The import property for custom layouts: the rows the csv module reads from the
    named columns, exactly, or one clear refusal and nothing changed.  The columns go in
    as a dict, or as the CLI's FIELD=COLUMN string where the names allow it."""
    content, columns, sep, header = data.draw(custom_files(kind), label="file and layout")
    as_text = ",".join(f"{field}={column}" for field, column in columns.items())
    plain = all("," not in str(column) for column in columns.values())
    layout = as_text if plain and data.draw(st.booleans()) else columns
    path = files_dir / f"custom-{kind}.csv"
    path.write_bytes(content)
    _reset(sqlite_engine)
    error = None
    delimiter = {"\t": data.draw(st.sampled_from(["\t", "tab", "\\t"]))}.get(sep, sep)
    try:
        if kind == "ratings":
            recsql.import_ratings(sqlite_engine, path, columns=layout, delimiter=delimiter, header=header)
        else:
            recsql.import_movies(sqlite_engine, path, columns=layout, delimiter=delimiter, header=header)
    except Exception as exc:  # noqa: BLE001 - the property says which ones are allowed
        error = exc
    check_outcome(
        sqlite_engine,
        path,
        content,
        kind,
        None,
        False,
        error,
        None,
        expected=lambda: custom_reference(content, kind, columns, sep, header),
    )


# ------------------------------------------------------------------ the source mapping

NAMES = _mostly(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}(\.[A-Za-z_][A-Za-z0-9_]{0,8})?", fullmatch=True),
    st.one_of(
        st.sampled_from(
            [
                "a.b.c",
                "reviews; DROP TABLE products",
                'u"; --',
                "reviews\n",
                "\nreviews",
                "",
                " ",
                "1abc",
                "Ünïcode",
                "x y",
                "a-b",
                "a.",
                ".a",
                "a\x00b",
                "u`x",
                "[u]",
                "u'--",
                "reviews\t",
                "x" * 200,
            ]
        ),
        st.text(max_size=10),
    ),
    one_bad_in=8,
)
QUERIES = _mostly(
    st.sampled_from(
        [
            "SELECT 1 AS u, 2 AS m, 3 AS r",
            "select * from t;",
            " WITH x AS (SELECT 1) SELECT * FROM x",
            "SELECT 1;;",
            "WITH gone AS (DELETE FROM products RETURNING id) SELECT id FROM gone",
            "SELECT 1 -- trailing comment",
            "\nSELECT\n1\n",
            "select u, m, r from reviews where r is not null",
        ]
    ),
    st.one_of(
        st.sampled_from(
            [
                "SELECT 1; DROP TABLE products",
                "DELETE FROM products",
                "INSERT INTO t SELECT 1",
                "selectx",
                "",
                ";",
                "/* c */ SELECT 1",
                "SELECT\x00 1",
                "select 'a;b'",
                "SELECT 1) AS s; DROP TABLE t; --",
            ]
        ),
        st.text(max_size=20).map(lambda t: "SELECT " + t),
        st.text(max_size=20),
    ),
    one_bad_in=3,
)
ANY_VALUE = st.one_of(
    NAMES,
    QUERIES,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(NAMES, max_size=2),
    st.dictionaries(NAMES, NAMES, max_size=2),
)


def _toml_value(value: object) -> str:
    """A TOML literal (JSON's string escapes are TOML's too, except that DEL must be escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(config: dict[str, Any]) -> str:
    lines = [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for name, table in config.items():
        if isinstance(table, dict):
            lines += [f"[{_toml_value(name)}]", *(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


@st.composite
def source_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A [ratings] (and maybe [movies]) mapping: mostly the right keys with plain names,
    some with injection attempts, wrong types, unknown or missing keys."""
    ratings: dict[str, Any] = {}
    if draw(st.booleans()):
        ratings["table"] = draw(NAMES)
    if "table" not in ratings or draw(st.integers(0, 9)) == 0:
        ratings["query"] = draw(QUERIES)
    for key in ("user", "movie", "rating", "time"):
        if draw(st.integers(0, 9)) > (2 if key == "time" else 0):
            ratings[key] = draw(NAMES) if draw(st.integers(0, 19)) else draw(ANY_VALUE)
    config: dict[str, Any] = {"ratings": ratings}
    if draw(st.booleans()):
        movies = {key: draw(NAMES) for key in ("table", "id", "title", "genres") if draw(st.integers(0, 4))}
        config["movies"] = movies if draw(st.integers(0, 9)) else draw(ANY_VALUE)
    if draw(st.integers(0, 9)) == 0:
        section = draw(st.sampled_from(["ratings", "movies", "extra"]))
        target = config.setdefault(section, {})
        if isinstance(target, dict):
            target[draw(st.sampled_from(["titel", "users", "Table", "extra"]))] = draw(ANY_VALUE)
        else:
            config[section] = draw(ANY_VALUE)
    if draw(st.integers(0, 19)) == 0:
        config["ratings"] = draw(ANY_VALUE)
    return config


@st.composite
def source_files(draw: st.DrawFn) -> tuple[bytes, dict[str, Any] | None]:
    """TOML bytes, and the mapping they hold (None where they are junk)."""
    config = draw(source_configs())
    text_ = _toml(config)
    how = draw(st.sampled_from(["toml"] * 6 + ["junk", "mutated", "utf-16", "latin-1"]))
    if how == "junk":
        return draw(st.one_of(st.text(max_size=60).map(str.encode), st.binary(max_size=60))), None
    if how == "mutated":
        at = draw(st.integers(0, len(text_)))
        junk = draw(st.sampled_from(['"', "[", "]", "=", "\n", "\x00", "'''", "\\"]))
        return (text_[:at] + junk + text_[at:]).encode(), None
    if how in ("utf-16", "latin-1"):
        return text_.encode(how, errors="replace"), None
    return text_.encode(), config


@TOML
@given(case=source_files())
def test_source_from_toml_is_valid_or_one_clear_error(tmp_path_factory, case):
    data, config = case
    path = tmp_path_factory.getbasetemp() / "source.toml"
    path.write_bytes(data)
    try:
        source = Source.from_toml(path)
    except InvalidParameter as exc:  # anything else fails the test, with its traceback
        message = str(exc)
        assert str(path) in message and "\n" not in message, message
        event("refused")
        return
    event("accepted")
    names = [source.user, source.movie, source.rating, source.table, source.time]
    if source.movies_table is not None:
        names += [source.movies_table, source.movies_id, source.movies_title, source.movies_genres]
    assert all(PLAIN_NAME.fullmatch(name) for name in names if name is not None), names
    assert (source.table is None) != (source.query is None)
    if source.query is not None:
        assert re.match(r"(select|with)\b", source.query, flags=re.I) and ";" not in source.query
        assert "\x00" not in source.query
    if config is not None:  # what the file says, nothing else
        ratings = config["ratings"]
        assert (source.user, source.movie, source.rating, source.table, source.time) == tuple(
            ratings.get(k) for k in ("user", "movie", "rating", "table", "time")
        )
        if source.query is not None:
            assert source.query == ratings["query"].strip().rstrip(";").strip()
        movies = config.get("movies", {})
        assert source.movies_table == movies.get("table")


@TOML
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "table",
                "query",
                "user",
                "movie",
                "rating",
                "time",
                "movies_table",
                "movies_id",
                "movies_title",
                "movies_genres",
            ]
        ),
        ANY_VALUE,
    )
)
def test_source_fields_are_valid_or_invalid_parameter(fields):
    """Source itself (as from_params builds it from a stored run): valid, or InvalidParameter."""
    try:
        source = Source(**fields)
    except InvalidParameter:
        return
    except TypeError:  # a required field is missing: Python's own check, before ours
        assert not {"user", "movie", "rating"} <= set(fields)
        return
    assert all(PLAIN_NAME.fullmatch(getattr(source, name)) for name in ("user", "movie", "rating"))


# ------------------------------------------------------------------ the bugs it found, pinned


def _file(tmp_path: Path, content: bytes | str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _refused(read, path: Path, line: int | None, reason: str, where: Path | None = None, **kwargs: Any) -> None:
    """``read(path)`` raises an InputError naming ``where`` (default: the path) and ``line``."""
    with pytest.raises(InputError) as caught:
        read(path, **kwargs)
    where = f"{where or path}, line {line}: " if line else f"{where or path}: "
    assert str(caught.value).startswith(where) and reason in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "content,line",
    [
        ('user_id,movie_id,value\n1,2,"5\n', 2),  # was pandas' ParserError (a traceback)
        ('movie_id,title,genre\n1,"Heat,Crime\n2,Up,Animation\n', 2),
    ],
)
def test_an_unbalanced_quote_is_refused_with_its_line(tmp_path, content, line):
    read = read_ratings_file if content.startswith("user") else read_movies_file
    _refused(read, _file(tmp_path, content), line, 'a quoted field starts here and never ends (unbalanced ")')


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n", b"\xff\xfe\n\x00"])
def test_a_file_of_only_a_byte_order_mark_is_empty_with_any_format(tmp_path, content):
    """With --format there is no detection step to stop it: was an IndexError."""
    for format in FORMATS:
        _refused(read_ratings_file, _file(tmp_path, content), None, "the file is empty", format=format)
        _refused(read_movies_file, _file(tmp_path, content), None, "the file is empty", format=format)


def test_a_forced_format_does_not_take_a_row_of_data_for_its_header(tmp_path):
    """Was: the first rating silently dropped as the 'header'."""
    path = _file(tmp_path, "1,2,5\n3,4,5\n")
    _refused(
        read_ratings_file, path, 1, "expected the header line user_id,movie_id,value, found data", format="tutorial"
    )
    _refused(
        read_movies_file,
        _file(tmp_path, "1,A,x\n"),
        1,
        "expected the header line movieid,title,genres",
        format="movielens",
    )
    assert read_ratings_file(_file(tmp_path, "user,movie,stars\n1,2,5\n"), format="tutorial").user_id.tolist() == [1]


@pytest.mark.parametrize("digits", ["١٢", "１２", "𝟏𝟐"])
def test_ids_are_ascii_digits(tmp_path, digits):
    """Was: other scripts' digits accepted through int() (١٢ imported as user 12)."""
    _refused(read_ratings_file, _file(tmp_path, f"user_id,movie_id,value\n{digits},2,5\n"), 2, "is not a whole number")


@pytest.mark.parametrize(
    "content,line",
    [
        (b"movie_id,title,genre\n1,A\x00B,x\n", 2),  # was: imported into SQLite with the NUL
        (b"user_id,movie_id,value\n1,2,5\x00\n", 2),
        ("user_id,movie_id,value\n1,2,5\n".encode("utf-16-le"), 1),  # UTF-16 without its mark
    ],
)
def test_nul_bytes_are_refused(tmp_path, content, line):
    read = read_movies_file if content.startswith(b"movie") else read_ratings_file
    _refused(read, _file(tmp_path, content), line, "has a NUL byte (0x00)")


def test_quotes_are_read_as_the_csv_tokenizer_reads_them(tmp_path):
    """A quote inside an unquoted field is a character, and a quote after a space does
    not open a field.  Were: a valid file refused with no line ('parsed 2 rows but the
    file has 1 records'); a row whose fields were shifted imported silently."""
    frame = read_movies_file(_file(tmp_path, 'movie_id,title,genre\n1,Foo"s,x\n2,"Bar ""B"", 2",y\n3,Baz"s,z\n'))
    assert frame.title.tolist() == ['Foo"s', 'Bar "B", 2', 'Baz"s'] and frame.genres.tolist() == ["x", "y", "z"]
    _refused(read_movies_file, _file(tmp_path, 'movie_id,title,genre\n1, "a,b",c\n'), 2, "expected 3 fields, found 4")


def test_a_carriage_return_inside_a_line_is_refused_with_its_line(tmp_path):
    """Was: 'parsed 2 rows but the file has 1 records', with no line."""
    _refused(read_ratings_file, _file(tmp_path, "user_id,movie_id,value\n1,2\r,5\n"), 2, "a carriage return (\\r)")


def test_a_lone_carriage_return_in_a_quoted_title_is_refused_on_both_databases(engine, run, tmp_path):
    """Was: on PostgreSQL, a traceback (BadCopyFileFormat: the bulk writer leaves a lone
    \\r unquoted, and COPY ends the row there); on SQLite, imported."""
    path = _file(tmp_path, b'movie_id,title,genre\n1,"a\rb",x\n2,"c\r\nd",y\n')
    result = run("import", "movies", path, ok=False)
    assert f"{path}, line 2: a carriage return" in result.output and len(result.output.strip().splitlines()) == 1
    run("import", "movies", _file(tmp_path, b'movie_id,title,genre\n2,"c\r\nd",y\n', "ok.csv"))
    with engine.connect() as conn:
        assert conn.execute(select(Movie.title)).scalars().all() == ["c\r\nd"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_says_the_encoding(tmp_path, encoding):
    """Spreadsheets save "Unicode text" as UTF-16 with a byte-order mark.  Was: refused as
    'cannot tell the format from the first line ÿþu\\x00s\\x00...'."""
    content = "userId,movieId,rating,timestamp\r\n1,2,4.5,964982703\r\n"
    data = content.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    frame = read_ratings_file(_file(tmp_path, data))
    assert frame.values.tolist() == [[1, 2, 4.5, 964982703]]
    item = "1|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 18 + ["1"]) + "\n"
    assert read_movies_file(_file(tmp_path, codecs.BOM_UTF8 + item.encode(), "u.item")).title.tolist() == [
        "Misérables, Les (1995)"
    ]  # the mark wins over u.item's latin-1
    _refused(
        read_ratings_file,
        _file(tmp_path, codecs.BOM_UTF16_LE + b"1\x00,"),
        1,
        "not valid UTF-16 text",
        format="tutorial",
    )


def test_a_byte_order_mark_inside_the_file_is_refused(tmp_path):
    """The tokenizer drops one at the start of its input only: was imported in line 1 of
    a headerless file (u.data) and refused elsewhere."""
    _refused(read_ratings_file, _file(tmp_path, "\ufeff\ufeff1\t2\t3\t4\n".encode()), 1, "a byte-order mark (U+FEFF)")
    _refused(
        read_ratings_file,
        _file(tmp_path, "user_id,movie_id,value\n1,2,3\n\ufeff4,5,3\n".encode()),
        3,
        "a byte-order mark (U+FEFF)",
    )


def test_the_smallest_64_bit_timestamp_is_in_range(tmp_path):
    """Was: -2^63 refused as 'outside the 64-bit integer range'."""
    frame = read_ratings_file(_file(tmp_path, f"userId,movieId,rating,timestamp\n1,2,4,{-(2**63)}\n"))
    assert frame.rated_at.tolist() == [-(2**63)]
    _refused(
        read_ratings_file,
        _file(tmp_path, f"userId,movieId,rating,timestamp\n1,2,4,{-(2**63) - 1}\n"),
        2,
        "outside the 64-bit integer range",
    )
    _refused(read_ratings_file, _file(tmp_path, f"user_id,movie_id,value\n{-(2**63)},2,4\n"), 2, "is negative")


def test_a_message_quotes_a_huge_field_cut_short(tmp_path):
    """Was: a message as long as the field (a megabyte of junk, one line of the terminal)."""
    with pytest.raises(InputError) as caught:
        read_ratings_file(_file(tmp_path, b"user_id,movie_id,value\n1,2," + b"x" * 100_000 + b"\n"))
    assert len(str(caught.value)) < 200 and "is not a number" in str(caught.value)
    with pytest.raises(InputError, match="is outside the 64-bit integer range") as caught:
        read_ratings_file(_file(tmp_path, b"user_id,movie_id,value\n" + b"9" * 100_000 + b",2,3\n"))
    assert len(str(caught.value)) < 200
    _refused(
        read_ratings_file,
        _file(tmp_path, "user_id,movie_id,value\n1,2,1e999\n"),
        2,
        "rating '1e999' is not a finite number",
    )


def test_a_bad_u_genre_is_an_input_error(tmp_path):
    """Was: int() of its index column raised ValueError (a traceback)."""
    item = _file(tmp_path, "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 19) + "\n", "u.item")
    genre = _file(tmp_path, "unknown|0\nAction|one\n", "u.genre")
    _refused(read_movies_file, item, 2, "expected name|index with a new index 0-18", where=genre)
    genre.write_text("".join(f"g{i}|{i}\n" for i in range(18)))
    _refused(read_movies_file, item, None, "expected 19 genres, found 18", where=genre)


def _source_file(tmp_path: Path, content: str | bytes) -> Path:
    return _file(tmp_path, content, "recsql.toml")


RATINGS = '[ratings]\ntable = "reviews"\nuser = "u"\nmovie = "m"\nrating = "r"\n'


@pytest.mark.parametrize(
    "content,message",
    [
        (RATINGS.replace('"reviews"', '"reviews\\n"'), "is not a plain name"),  # "$" matched before the newline
        (RATINGS.replace('table = "reviews"', "query = 5"), "a source query must be a string of SQL, not 5"),
        (RATINGS.replace('table = "reviews"', 'query = "SELECT 1 AS u, 2 AS m, 3 AS r\\u0000"'), "NUL character"),
        ('movies = "products"\n' + RATINGS, "[movies] must be a table"),  # was AttributeError
        (RATINGS + '[movies]\ntable = "products"\ntitel = "name"\n', "unknown [movies] keys ['titel']"),
        (RATINGS + '[movies]\ntitle = "name"\n', "[movies] needs table"),
        (RATINGS + '[movie]\ntable = "products"\n', "unknown tables or keys ['movie']"),
        (RATINGS.replace('"u"', "1"), "source user column 1 is not a plain name"),
        ('[ratings]\nuser = "u"\nmovie = "m"\nrating = "r"\n', "exactly one of table or query"),
        (
            RATINGS.replace("reviews", "café").encode("latin-1"),
            "not valid TOML: not UTF-8 text",
        ),  # was UnicodeDecodeError
        (RATINGS.encode("utf-16"), "not valid TOML: not UTF-8 text"),
    ],
)
def test_a_bad_source_file_is_one_invalid_parameter_naming_it(tmp_path, content, message):
    path = _source_file(tmp_path, content)
    with pytest.raises(InvalidParameter) as caught:
        Source.from_toml(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value), str(caught.value)


def test_a_source_path_that_is_a_directory_is_an_invalid_parameter(tmp_path):
    """Was IsADirectoryError."""
    with pytest.raises(InvalidParameter, match="cannot read the source file"):
        Source.from_toml(tmp_path)


def test_a_source_query_may_end_in_a_line_comment(tmp_path):
    """Was: the comment swallowed the ')' that wraps the query (a syntax error at training)."""
    from recsql.data.ratings import ratings_from_database

    engine = recsql.connect(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE reviews (c INTEGER, p INTEGER, s REAL)"))
        conn.execute(text("INSERT INTO reviews VALUES (1, 2, 4), (2, 2, 5)"))
    source = Source(query="SELECT c AS u, p AS m, s AS r FROM reviews -- every review", user="u", movie="m", rating="r")
    assert ratings_from_database(engine, source=source).nnz == 2
    engine.dispose()


def test_a_junk_source_file_is_one_line_through_the_cli(run, tmp_path):
    path = _source_file(tmp_path, b"\xff\xfe[\x00r\x00")
    result = run("train", "--source", path, ok=False)
    assert result.output.startswith(f"Error: {path}: not valid TOML") and len(result.output.strip().splitlines()) == 1


def test_a_misread_encodings_first_line_is_quoted_short(tmp_path):
    """Found by the fuzzer: UTF-16 with a byte dropped decodes to a first line of
    characters that repr escapes six-fold; the message quotes at most 80 of its own."""
    data = codecs.BOM_UTF16_LE + b'0\x00|\x00"T\x00o\x00y' + "\u3000|".encode("utf-16-le") * 60 + b"\n\x00"
    path = tmp_path / "movies.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as refused:
        read_movies_file(path)
    message = str(refused.value)
    assert "cannot tell the movies format" in message and len(message) < 400 + len(str(path)), message

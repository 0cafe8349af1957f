"""Reading ratings (and item titles) straight from the application's own tables.

A :class:`Source` maps the application's schema onto what recsql needs: where the
ratings are (a table or view, or a read-only SELECT) and which columns hold the user,
the item, the rating and optionally the time; and, optionally, where item titles are.
It comes from a TOML file:

    [ratings]
    table = "shop.reviews"        # or: query = "SELECT ... FROM reviews JOIN ..."
    user = "customer_id"
    movie = "product_id"
    rating = "stars"
    time = "created_at"           # optional: used by --duplicates last

    [movies]                      # optional: titles and genres shown in the views
    table = "products"
    id = "id"
    title = "name"
    genres = "category"

Safety: every identifier must be a plain name (letters, digits, underscore; a
schema-qualified table is two of them) and is quoted by the database's own rules; a
query must be one SELECT (or WITH ... SELECT) statement, and it runs inside a read-only
transaction (PostgreSQL: SET TRANSACTION READ ONLY; SQLite: PRAGMA query_only), so
even a data-modifying CTE is refused by the database itself.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from recsql.errors import InvalidParameter

# fullmatch, not match with "$": "$" also matches before a trailing newline.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

_RATINGS_KEYS = ("table", "query", "user", "movie", "rating", "time", "ids")
_MOVIES_KEYS = ("table", "id", "title", "genres")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidParameter(f"source {what} {value!r} is not a plain name (letters, digits, _; schema.table)")
    return value


@dataclass(frozen=True)
class Source:
    """Where the ratings (and optionally the titles) live in the application's schema."""

    user: str
    movie: str
    rating: str
    table: str | None = None
    query: str | None = None
    time: str | None = None
    movies_table: str | None = None
    movies_id: str = "id"
    movies_title: str = "title"
    movies_genres: str | None = None
    ids: str = "integer"  # "text": user and movie ids are the application's keys (text, UUIDs)

    def __post_init__(self) -> None:
        if self.ids not in ("integer", "text"):
            raise InvalidParameter(f"source ids are integer or text, not {self.ids!r}")
        if (self.table is None) == (self.query is None):
            raise InvalidParameter("a source needs exactly one of table or query for its ratings")
        if self.table is not None:
            _name(self.table, "table")
        for what in ("user", "movie", "rating"):
            _name(getattr(self, what), f"{what} column")
        if self.time is not None:
            _name(self.time, "time column")
        if self.query is not None:
            object.__setattr__(self, "query", _check_select(self.query))
        if self.movies_table is not None:
            _name(self.movies_table, "movies table")
            _name(self.movies_id, "movies id column")
            _name(self.movies_title, "movies title column")
            if self.movies_genres is not None:
                _name(self.movies_genres, "movies genres column")

    @classmethod
    def from_toml(cls, path: str | Path) -> Source:
        """The source a TOML file describes; any problem with the file is one
        InvalidParameter that names it (a typo is refused, never silently ignored)."""
        try:
            # TOML is UTF-8 by definition, whatever the locale says.
            config = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise InvalidParameter(f"no source file {path}") from None
        except OSError as exc:
            raise InvalidParameter(f"{path}: cannot read the source file: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InvalidParameter(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameter(f"{path}: not valid TOML: {exc}") from None
        unknown = set(config) - {"ratings", "movies"}
        if unknown:
            raise InvalidParameter(f"{path}: unknown tables or keys {sorted(unknown)}; expected [ratings] and [movies]")
        ratings, movies = config.get("ratings"), config.get("movies", {})
        if not isinstance(ratings, dict):
            raise InvalidParameter(f"{path}: needs a [ratings] table (see the README's `recsql train --source`)")
        if not isinstance(movies, dict):
            raise InvalidParameter(f"{path}: [movies] must be a table with keys {', '.join(_MOVIES_KEYS)}")
        for section, keys, found in (("ratings", _RATINGS_KEYS, ratings), ("movies", _MOVIES_KEYS, movies)):
            unknown = set(found) - set(keys)
            if unknown:
                raise InvalidParameter(f"{path}: unknown [{section}] keys {sorted(unknown)}; expected {list(keys)}")
        missing = {"user", "movie", "rating"} - set(ratings)
        if missing:
            raise InvalidParameter(f"{path}: [ratings] needs {', '.join(sorted(missing))}")
        if movies and "table" not in movies:
            raise InvalidParameter(f"{path}: [movies] needs table")
        try:
            return cls(
                **ratings,
                movies_table=movies.get("table"),
                movies_id=movies.get("id", "id"),
                movies_title=movies.get("title", "title"),
                movies_genres=movies.get("genres"),
            )
        except InvalidParameter as exc:
            raise InvalidParameter(f"{path}: {exc}") from None

    def to_params(self) -> dict[str, Any]:
        """The mapping as stored with a run (so the serving side reads the same source)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Source | None:
        return cls(**params) if params else None

    # ------------------------------------------------------------------ SQL

    def ratings_sql(
        self, conn: Connection, *, in_order: bool = False, user_filter: bool = False, movie_filter: bool = False
    ) -> str:
        """SELECT user, movie, rating FROM the source (quoted); optionally one user's
        (``:user_id``) or one movie's (``:movie_id``)."""
        q = conn.dialect.identifier_preparer.quote
        # The line break ends a -- comment on the query's last line, which would hide the ")".
        frm = _quoted_table(conn, self.table) if self.table else f"({self.query}\n) AS recsql_source"
        user, movie = q(self.user), q(self.movie)
        if self.ids == "text":  # keys of any type (text, UUID, ...) read as text
            user, movie = f"CAST({user} AS TEXT)", f"CAST({movie} AS TEXT)"
        sql = f"SELECT {user}, {movie}, {q(self.rating)} FROM {frm} WHERE {q(self.rating)} IS NOT NULL"
        if user_filter:
            sql += f" AND {user} = :user_id"
        if movie_filter:
            sql += f" AND {movie} = :movie_id"
        if in_order and self.time:
            sql += f" ORDER BY CASE WHEN {q(self.time)} IS NULL THEN 0 ELSE 1 END, {q(self.time)}"
        return sql

    def movies_sql(self, conn: Connection) -> str | None:
        if self.movies_table is None:
            return None
        q = conn.dialect.identifier_preparer.quote
        genres = q(self.movies_genres) if self.movies_genres else "NULL"
        movie = f"CAST({q(self.movies_id)} AS TEXT)" if self.ids == "text" else q(self.movies_id)
        return (
            f"SELECT {movie} AS movie_id, {q(self.movies_title)} AS title, {genres} AS genres "
            f"FROM {_quoted_table(conn, self.movies_table)}"
        )


def _quoted_table(conn: Connection, name: str) -> str:
    q = conn.dialect.identifier_preparer.quote
    return ".".join(q(part) for part in name.split("."))


def _check_select(query: Any) -> str:
    """The query without a trailing ';', if it is one SELECT statement."""
    if not isinstance(query, str):
        raise InvalidParameter(f"a source query must be a string of SQL, not {query!r}")
    if "\x00" in query:  # no driver can send one
        raise InvalidParameter("a source query must not contain a NUL character")
    body = query.strip().rstrip(";").strip()
    if ";" in body:
        raise InvalidParameter("a source query must be a single statement (no ';')")
    if not re.match(r"^(select|with)\b", body, flags=re.I):
        raise InvalidParameter("a source query must be a SELECT (or WITH ... SELECT)")
    return body


@contextmanager
def read_only(conn: Connection) -> Iterator[Connection]:
    """Run the block in a transaction the database itself keeps read-only."""
    if conn.dialect.name == "postgresql":
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
    else:
        conn.exec_driver_sql("PRAGMA query_only = ON")
        try:
            yield conn
        finally:
            conn.exec_driver_sql("PRAGMA query_only = OFF")

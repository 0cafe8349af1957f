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

Or, instead of ``[ratings]``, train on what users did as well as what they rated
(:meth:`Source.from_events`): each implicit event stands for the rating its kind is
given, beside recsql's ``ratings`` and the ``rated`` events' own values:

    [events]
    clicked = 3.5
    watched = 4
    bought = 5
    ratings = true                # also recsql's ratings table (the default)

Names resolve in the application's namespace, never in recsql's: with ``--schema`` an
unqualified ``table = "ratings"`` is the application's ``ratings`` (PostgreSQL: the
connection's own search_path; SQLite: the application's file, also attached as ``app``).

Safety, by construction: every identifier must be a plain name (letters, digits,
underscore; a schema-qualified table is two of them) and is quoted by the database's
own rules; a query is parsed, checked and regenerated (:mod:`recsql.data.source_query`:
one SELECT, functions without side effects only); and every read (:func:`reading`) runs
in a read-only transaction that is rolled back, never committed, under a statement
timeout (``timeout``, seconds, default :data:`DEFAULT_TIMEOUT`) and, on PostgreSQL,
optionally as a role of its own (``role``: ``SET LOCAL ROLE``, e.g. one made by
``recsql db grant-source``) that may read the mapped tables and nothing else.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from recsql.data.source_query import checked_select
from recsql.db import timeouts
from recsql.db.engine import application_url
from recsql.db.timeouts import milliseconds
from recsql.errors import InvalidParameter

# fullmatch, not match with "$": "$" also matches before a trailing newline.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

_RATINGS_KEYS = ("table", "query", "user", "movie", "rating", "time", "ids", "timeout", "role")
DEFAULT_TIMEOUT = 3600.0
"""Seconds a source's query may run before the database cancels it."""
_MOVIES_KEYS = ("table", "id", "title", "genres")
DEFAULT_EVENT_RATINGS = {"clicked": 3.5, "watched": 4.0, "bought": 5.0}
"""The rating each implicit event stands for when training on events: a click is mild
interest (above the middle of a 1-5 scale), watching is liking, buying is the strongest."""
_IMPLICIT = ("clicked", "watched", "bought")


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
    timeout: float = DEFAULT_TIMEOUT  # seconds a read may run (statement_timeout)
    role: str | None = None  # PostgreSQL: read as this role (SET LOCAL ROLE)

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
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or not 0 < self.timeout < 1e9:
            raise InvalidParameter(f"source timeout is a number of seconds above 0, not {self.timeout!r}")
        if self.role is not None and (not isinstance(self.role, str) or "." in _name(self.role, "role")):
            raise InvalidParameter(f"source role {self.role!r} is not a plain name")
        if self.query is not None:
            object.__setattr__(self, "query", _check_select(self.query))
            checked_select(self.query, None, self._selected())
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
        unknown = set(config) - {"ratings", "movies", "events"}
        if unknown:
            raise InvalidParameter(
                f"{path}: unknown tables or keys {sorted(unknown)}; expected [ratings] (or [events]) and [movies]"
            )
        if "events" in config:
            return cls._events_toml(path, config)
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

    @classmethod
    def from_events(
        cls,
        weights: dict[str, float] | None = None,
        *,
        ratings: bool = True,
        namespace: str | None = None,
        **settings: Any,
    ) -> Source:
        """Train on recsql's ``events``: each ``clicked``, ``watched`` or ``bought`` event
        as the rating ``weights`` gives its kind (default :data:`DEFAULT_EVENT_RATINGS`;
        a kind left out is not used), each ``rated`` event as its value, and, with
        ``ratings``, recsql's ``ratings`` beside them.  A (user, movie) with several
        signals is resolved by the retrain's ``duplicates`` policy (``max``, the
        default: the strongest).  ``namespace``: recsql's schema, when it has one of its
        own (the source reads the application's namespace).  ``settings``: the other
        fields (``timeout``, ``role``, ``movies_table``...)."""
        weights = dict(DEFAULT_EVENT_RATINGS if weights is None else weights)
        unknown = set(weights) - set(_IMPLICIT)
        if unknown:
            raise InvalidParameter(f"event weights are for {', '.join(_IMPLICIT)}; not {', '.join(sorted(unknown))}")
        for kind, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidParameter(f"the rating a {kind} event stands for must be a number, not {value!r}")
        prefix = f"{_name(namespace, 'namespace')}." if namespace else ""
        cases = " ".join(f"WHEN '{kind}' THEN {float(value)!r}" for kind, value in sorted(weights.items()))
        kinds = ", ".join(f"'{kind}'" for kind in sorted({*weights, "rated"}))
        query = (
            f"SELECT user_id, movie_id, CASE kind {cases} ELSE value END AS rating, at FROM {prefix}events "
            f"WHERE kind IN ({kinds})"
        )
        if ratings:
            query = f"SELECT user_id, movie_id, value AS rating, rated_at AS at FROM {prefix}ratings UNION ALL " + query
        return cls(user="user_id", movie="movie_id", rating="rating", time="at", query=query, **settings)

    @classmethod
    def _events_toml(cls, path: str | Path, config: dict[str, Any]) -> Source:
        events = config["events"]
        if "ratings" in config or not isinstance(events, dict):
            raise InvalidParameter(f"{path}: [events] is a table of its own, instead of [ratings]")
        unknown = set(events) - {*_IMPLICIT, "ratings", "namespace", "timeout", "role"}
        if unknown:
            raise InvalidParameter(
                f"{path}: unknown [events] keys {sorted(unknown)}; expected {', '.join(_IMPLICIT)}, ratings, "
                "namespace, timeout, role"
            )
        weights = {k: v for k, v in events.items() if k in _IMPLICIT} or None
        settings = {k: events[k] for k in ("timeout", "role") if k in events}
        include = events.get("ratings", True)
        if not isinstance(include, bool):
            raise InvalidParameter(f"{path}: [events] ratings is true or false, not {include!r}")
        try:
            return cls.from_events(weights, ratings=include, namespace=events.get("namespace"), **settings)
        except InvalidParameter as exc:
            raise InvalidParameter(f"{path}: {exc}") from None

    def to_params(self) -> dict[str, Any]:
        """The mapping as stored with a run (so the serving side reads the same source)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Source | None:
        return cls(**params) if params else None

    def _selected(self) -> list[str]:
        return [self.user, self.movie, self.rating, *([self.time] if self.time else [])]

    # ------------------------------------------------------------------ SQL

    def ratings_sql(
        self, conn: Connection, *, in_order: bool = False, user_filter: bool = False, movie_filter: bool = False
    ) -> str:
        """SELECT user, movie, rating FROM the source (quoted); optionally one user's
        (``:user_id``) or one movie's (``:movie_id``)."""
        q = conn.dialect.identifier_preparer.quote
        if self.table:
            frm = _quoted_table(conn, self.table)
        else:
            assert self.query is not None
            frm = f"({checked_select(self.query, conn.dialect.name, self._selected())}) AS recsql_source"
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
    """The query without a trailing ';' (the parser checks the rest: source_query)."""
    if not isinstance(query, str):
        raise InvalidParameter(f"a source query must be a string of SQL, not {query!r}")
    if "\x00" in query:  # no driver can send one
        raise InvalidParameter("a source query must not contain a NUL character")
    return query.strip().rstrip(";").strip()


@contextmanager
def reading(engine: Engine, source: Source | None = None, *, timeout: float | None = None) -> Iterator[Connection]:
    """A connection for reading the application's tables: it sees the application's
    namespace (not recsql's), and its transaction is read-only, bounded by the source's
    ``timeout`` (or ``timeout`` here, when shorter), run as the source's ``role`` if it
    has one, and rolled back at the end, never committed."""
    seconds = min(source.timeout if source else DEFAULT_TIMEOUT, timeout or math.inf)
    role = source.role if source else None
    app = application_url(engine)
    if app is not None:  # SQLite with a namespace: the application's own file, read-only
        if role is not None:
            raise InvalidParameter("a source role needs PostgreSQL (SQLite has no roles)")
        own = _sqlite_reader(app, engine.get_execution_options()[timeouts.LOCK_TIMEOUT_OPTION])
        try:
            with own.connect() as conn:
                yield from _read_only(conn, seconds, None)
        finally:
            own.dispose()
        return
    with engine.connect() as conn:
        yield from _read_only(conn, seconds, role)


TIMEOUT_SETTING = "timeout = SECONDS in the source mapping's [ratings]"


def _read_only(conn: Connection, seconds: float, role: str | None) -> Iterator[Connection]:
    # A read cancelled by the source's timeout names the setting that allows a longer one
    # (recsql's engines and bulk paths read it from the connection: recsql.db.timeouts).
    conn.execution_options(**{timeouts.STATEMENT_SETTING_OPTION: TIMEOUT_SETTING})
    transaction = conn.begin()
    try:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            # The application's namespace: recsql's connections search only recsql's schema.
            conn.exec_driver_sql("SET LOCAL search_path TO DEFAULT")
            conn.execute(text("SELECT set_config('statement_timeout', :t, true)"), {"t": milliseconds(seconds)})
            if role is not None:
                conn.exec_driver_sql(f"SET LOCAL ROLE {conn.dialect.identifier_preparer.quote(role)}")
        else:
            conn.exec_driver_sql("PRAGMA query_only = ON")
        yield conn
    finally:
        transaction.rollback()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = OFF")


def _sqlite_reader(url: str, lock_timeout: float) -> Engine:
    """An engine on the application's SQLite file, opened read-only (so recsql never
    changes it, not even its journal mode), the file also attached as ``app`` (the name
    mappings used before namespaces were sealed), waits for the application's writes
    bounded by recsql's ``lock_timeout`` and said like recsql's own."""
    path = str(make_url(url).database)
    uri = f"file:{path}?mode=ro"
    engine = create_engine(f"sqlite:///{uri}&uri=true", execution_options={timeouts.LOCK_TIMEOUT_OPTION: lock_timeout})
    timeouts.explain_timeouts(engine)

    @event.listens_for(engine, "connect")
    def _settings(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        dbapi_connection.execute("ATTACH DATABASE ? AS app", (uri,))

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def source_movies(engine: Engine, source: Source) -> pd.DataFrame:
    """The application's items through ``source``'s movies mapping, as columns
    movie_id, title, genres (empty when it maps no movies table)."""
    columns = ["movie_id", "title", "genres"]
    if source.movies_table is None:
        return pd.DataFrame(columns=columns)
    with reading(engine, source) as conn:
        movies_sql = source.movies_sql(conn)
        assert movies_sql is not None
        return pd.DataFrame(conn.execute(text(movies_sql)).all(), columns=columns)

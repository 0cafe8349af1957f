"""What every reader of recsql's database shares, application or admin: where the
queries run, and how an application's ids and keys become recsql's.

:class:`Reader` takes an Engine, a Connection, an ORM Session or a URL; each call runs
its queries on the caller's connection (inside the host application's transaction) or
on one borrowed from the pool, with the reader's timeouts and namespace in force.  It
resolves application keys (text ids) to recsql's integer ids, titles movies, and reads
a user's or a movie's ratings from where a model read them.  The application's
:class:`~recsql.serving.recommender.Recommender` and the admin's
:class:`~recsql.serving.admin.AdminReader` are Readers; every query they run is the
store's (:mod:`recsql.store`), or the application's own through its source mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from recsql import store
from recsql.data.source import Source, reading
from recsql.db import keys
from recsql.db import settings as session_settings
from recsql.db.engine import resolve_schema, resolve_url
from recsql.db.keys import Side
from recsql.db.migrate import connect
from recsql.errors import InvalidParameter, UnknownMovie, UnknownUser
from recsql.serving.answers import MovieInfo
from recsql.serving.checks import DIGITS, check_id
from recsql.store import catalogue

DEFAULT_TIMEOUT = 10.0
"""Seconds one call's queries may run, or wait for a lock, before DatabaseUnavailable."""

Bind = Engine | Connection | Session | scoped_session[Any]


class Reader:
    """Queries on an Engine, Connection, Session or URL, with application keys resolved."""

    def __init__(self, bind: Bind | str, *, schema: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        """``bind``: an Engine (share the reader across threads), a Connection or ORM
        Session (queries and writes run in its transaction; the caller commits), or a
        database URL (an engine of the reader's own, set up like :func:`recsql.connect`
        does and disposed by :meth:`close`).

        ``schema``: recsql's namespace (``--schema`` of the commands), with any bind; on
        PostgreSQL each call puts it on the search_path of the connection it uses and
        restores the connection's own afterwards; on SQLite, where the namespace is a file
        beside the application's, the reader opens that file with an engine of its own.
        ``timeout``: seconds each call's queries may run and wait for locks (PostgreSQL's
        statement and lock timeouts, SQLite's busy timeout) before DatabaseUnavailable."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < 1e6:
            raise InvalidParameter(f"timeout is a number of seconds above 0, not {timeout!r}")
        self.timeout = float(timeout)
        self.schema = resolve_schema(schema) if schema is not None else None
        if not isinstance(bind, str | Engine | Connection | Session | scoped_session):
            raise InvalidParameter(
                f"{type(self).__name__} reads through an Engine, Connection, Session or "
                f"database URL, not {type(bind).__name__}"
            )
        if self.schema is not None and not isinstance(bind, str) and bind_engine(bind).dialect.name == "sqlite":
            bind = bind_engine(bind).url.render_as_string(hide_password=False)  # the namespace is its own file
        owns = isinstance(bind, str)
        if isinstance(bind, str):
            bind = connect(bind, schema=schema, lock_timeout=timeout, statement_timeout=timeout)
        self.bind: Bind = bind
        self._owns_bind = owns

    @classmethod
    def from_url(cls, url: str | None = None, *, schema: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Self:
        """A reader on its own engine (URL, else ``$RECSQL_DATABASE_URL``; recsql's
        objects in ``schema``, else ``$RECSQL_SCHEMA``); :meth:`close` (or a ``with``
        block) disposes of it."""
        return cls(resolve_url(url), schema=schema, timeout=timeout)

    def close(self) -> None:
        """Dispose of the engine if the reader made it from a URL (an engine, connection
        or session the caller passed in stays the caller's)."""
        if self._owns_bind and isinstance(self.bind, Engine):
            self.bind.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _connection(self, writes: bool = False) -> Iterator[Connection]:
        """The caller's Connection, the Session's (in its transaction, begun if need be),
        or one borrowed from the Engine's pool for the duration; with this reader's
        timeouts and namespace in force for the call (an engine of its own has them on
        every connection already)."""
        bind = self.bind
        if isinstance(bind, Connection):
            with self._settings(bind, restore=True, writes=writes) as conn:
                yield conn
        elif isinstance(bind, Session | scoped_session):
            with self._settings(bind.connection(), restore=True, writes=writes) as conn:
                yield conn
        else:
            with bind.connect() as borrowed, self._settings(borrowed, restore=False) as conn:
                yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """Where a write goes: a transaction of its own, committed here, on an Engine;
        the caller's (who commits or rolls back) on a Connection or Session."""
        if isinstance(self.bind, Engine):
            with self.bind.begin() as begun, self._settings(begun, restore=False, writes=True) as conn:
                yield conn
        else:
            with self._connection(writes=True) as conn:
                yield conn

    @contextmanager
    def _settings(self, conn: Connection, restore: bool, writes: bool = False) -> Iterator[Connection]:
        """The call's timeouts (and namespace) on a lent connection.  SQLite's reads need
        none: in WAL mode nothing blocks them, and a lent connection's own busy timeout
        (Python's sqlite3: 5 s) bounds any other wait."""
        if self._owns_bind or (conn.dialect.name == "sqlite" and not writes):
            yield conn
            return
        wanted = session_settings.serving_settings(conn.dialect.name, self.timeout, self.schema)
        with session_settings.applied(conn, wanted, restore=restore):
            yield conn

    def _engine(self) -> Engine:
        return bind_engine(self.bind)

    # ------------------------------------------------------------------ application keys

    def _from_keys(self, side: Side, values: Iterable[object]) -> dict[object, object]:
        """Each value as given -> recsql's integer id for the application keys (``str``) among
        them, in one query; other values map to themselves (checked as ids afterwards).
        In a catalogue of text ids a string is a key exactly as given ("7" is the key "7",
        never recsql's movie 7; " a" is not "a"), and a key the catalogue does not know
        maps to None.  In a catalogue of integer ids, digits typed as text (a URL, the
        command line) map to the integer, leading zeros and surrounding spaces allowed
        ("007" and " 7" are 7); any other string maps to None."""
        given = list(values)
        for v in given:
            if not isinstance(v, str):
                check_id(v, side)  # before any query: a bad id costs nothing
        texts = {v for v in given if isinstance(v, str)}
        if "" in texts:
            raise InvalidParameter(f"a {side} id must not be empty")
        found: dict[str, int] = {}
        if texts:
            with self._connection() as conn:
                found = keys.ids_of(conn, side, sorted(texts))
                digits = {k for k in texts - set(found) if DIGITS.fullmatch(k.strip())}
                if digits and not keys.has_keys(conn, side):  # an integer catalogue: "3" is id 3
                    found.update({k: int(k.strip()) for k in digits})
        return {v: found.get(v) if isinstance(v, str) else v for v in given}

    def _movie_id(self, value: object) -> int:
        """A movie id, or the application's key of one (UnknownMovie if unknown)."""
        resolved = self._from_keys("movie", [value])[value]
        if resolved is None:
            raise UnknownMovie(value, "is not a movie key of this catalogue")
        return check_id(resolved, "movie")

    def _user_id(self, value: object) -> int | None:
        """A user id, or the application's key of one (None: a key the catalogue lacks)."""
        resolved = self._from_keys("user", [value])[value]
        return None if resolved is None else check_id(resolved, "user")

    def _known_user(self, value: object) -> int:
        user_id = self._user_id(value)
        if user_id is None:
            raise UnknownUser(value, "is not a user key of this catalogue")
        return user_id

    # ------------------------------------------------------------------ the catalogue, the ratings

    def _movie_info(self, movie_id: int | str) -> MovieInfo:
        """The catalogue entry of a movie (title and genres may be unknown: None)."""
        movie_id = self._movie_id(movie_id)
        with self._connection() as conn:
            row = catalogue.movie(conn, movie_id)
        if row is None:
            return MovieInfo(movie_id, None, None)
        return MovieInfo(row.movie_id, row.title, row.genres, row.movie_key)

    def _titles(self, movie_ids: np.ndarray) -> dict[int, tuple[str | None, str | None, str | None]]:
        """(title, genres, application key) of the given movies that the catalogue or the
        key map has."""
        if len(movie_ids) == 0:
            return {}
        with self._connection() as conn:
            return catalogue.titles(conn, movie_ids)

    def _ratings_of(self, user_id: int, source: Source | None) -> dict[int, float]:
        """The user's ratings (the highest of repeated ones), from where a model read them
        (``source``; None: recsql's ``ratings``)."""
        rows: list[Any]
        if source is None:
            with self._connection() as conn:
                rows = catalogue.user_ratings(conn, user_id)
        else:
            rows = [(movie, value) for _, movie, value in self._source_rows(source, "user", user_id)]
            if source.ids == "text":
                with self._connection() as conn:
                    found = keys.ids_of(conn, "movie", [str(m) for m, _ in rows])
                rows = [(found[str(m)], v) for m, v in rows if str(m) in found]
        ratings: dict[int, float] = {}
        for movie, value in rows:
            ratings[int(movie)] = max(float(value), ratings.get(int(movie), float("-inf")))
        return ratings

    def _source_rows(self, source: Source, side: Side, value: int) -> list[Any]:
        """The (user, movie, rating) rows of one user or movie (``side``, recsql's id
        ``value``) in the application's tables, keys as the source has them."""
        key: int | str = value
        if source.ids == "text":  # the source knows it by its key
            with self._connection() as conn:
                key = keys.keys_of(conn, side, np.array([value])).get(value, "")
        # The application's query runs read-only whichever way recsql was called: on a
        # connection of its own (a host's transaction may already have written, and
        # can no longer be made read-only), rolled back, within this call's timeout.
        with reading(self._engine(), source, timeout=self.timeout) as own:
            return catalogue.source_rows(own, source, side, key)

    def _source_of(self, model: int | store.ModelInfo | None) -> Source | None:
        """Where a model (its id or record; default: the active one) read its ratings: the
        mapping is read from ``models`` only for a model trained from a source (a reader
        role, which may not read ``models``, serves the others)."""
        with self._connection() as conn:
            info = store.active_info(conn) if model is None else model
            if isinstance(info, store.ModelInfo) and not info.from_source:
                return None
            return store.get_model(conn, info if isinstance(info, int) else info.model_id).source


def bind_engine(bind: Bind) -> Engine:
    """The Engine under an Engine, Connection or Session."""
    if isinstance(bind, Session | scoped_session):
        return bind.get_bind().engine
    return bind.engine

"""Database URLs and engines: which database, which namespace in it, and proof that it answers.

recsql speaks to SQLite and to PostgreSQL (through psycopg 3, installed by the
``recsql[postgres]`` extra and imported only when a PostgreSQL URL is used).  The URL comes from the
caller, else ``$RECSQL_DATABASE_URL``, else ``$DATABASE_URL``, else
``sqlite:///recsql.db``; recsql's namespace in it (:func:`make_engine`) from the caller,
else ``$RECSQL_SCHEMA``.

A namespace is sealed: every name recsql's connections resolve is recsql's own, never a
same-named table behind it (on PostgreSQL the search_path is the schema alone; on SQLite
the application's file is not attached).  The application's tables are read only
through :mod:`recsql.data.source`, on connections that see the application's namespace.
Every connection bounds its waits for locks (:mod:`recsql.db.timeouts`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

from recsql.db import timeouts
from recsql.db.settings import set_config_sql
from recsql.errors import DatabaseUnavailable, InvalidParameter

DEFAULT_URL = "sqlite:///recsql.db"
URL_ENV = "RECSQL_DATABASE_URL"
# psycopg is an extra: `pip install recsql` serves SQLite without it.
NEEDS_PSYCOPG = "PostgreSQL needs psycopg: pip install 'recsql[postgres]'"
FALLBACK_URL_ENV = "DATABASE_URL"
SCHEMA_ENV = "RECSQL_SCHEMA"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Execution options every engine of make_engine carries, read back by whoever needs them
# (connections inherit them): recsql's namespace, and the application's own database
# where it differs from recsql's (SQLite with a namespace); the timeouts' are
# recsql.db.timeouts'.
SCHEMA_OPTION = "recsql_schema"
APPLICATION_URL_OPTION = "recsql_application_url"


def resolve_url(url: str | None = None) -> str:
    """The database URL: explicit, else ``$RECSQL_DATABASE_URL``, else ``$DATABASE_URL``
    (the common convention of hosting platforms), else ``sqlite:///recsql.db``."""
    return resolve_url_source(url)[0]


def resolve_url_source(url: str | None = None) -> tuple[str, str]:
    """The URL :func:`resolve_url` picks and where it came from: ``"given"``, the
    environment variable's name, or ``"default"``."""
    if url:
        return url, "given"
    for name in (URL_ENV, FALLBACK_URL_ENV):
        if os.environ.get(name):
            return os.environ[name], name
    return DEFAULT_URL, "default"


def normalize_url(url: str) -> str:
    """Accept the plain ``postgresql://`` URLs people paste; recsql speaks psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def resolve_schema(schema: str | None = None) -> str | None:
    """recsql's namespace: explicit, else ``$RECSQL_SCHEMA``, else none (the database's
    default namespace, as before namespaces existed)."""
    schema = schema or os.environ.get(SCHEMA_ENV) or None
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidParameter(f"a recsql schema is a plain name (letters, digits, _), not {schema!r}")
    return schema


def namespaced_url(url: str, schema: str | None) -> str:
    """SQLite keeps a namespace's objects in a file of their own beside the application's
    (``shop.db`` -> ``shop.recsql.db``), which is recsql's main database."""
    parsed = make_url(url)
    if schema is None or parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(str(parsed.database))
    return parsed.set(database=str(path.with_name(f"{path.stem}.{schema}{path.suffix or '.db'}"))).render_as_string(
        hide_password=False
    )


def schema_of(engine: Engine) -> str | None:
    """The namespace an engine of :func:`make_engine` serves (None: the default one)."""
    return engine.get_execution_options().get(SCHEMA_OPTION)


def application_url(engine: Engine) -> str | None:
    """The application's own SQLite database when recsql's namespace is a file beside it."""
    return engine.get_execution_options().get(APPLICATION_URL_OPTION)


def make_engine(
    url: str | None = None,
    schema: str | None = None,
    *,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
) -> Engine:
    """Create an engine and prove it connects, or raise :class:`DatabaseUnavailable`.

    ``schema`` (else ``$RECSQL_SCHEMA``) gives recsql a namespace of its own in the
    application's database: on PostgreSQL a schema, the only one on its connections'
    ``search_path`` (created on first use); on SQLite a file beside the application's.
    ``lock_timeout`` (seconds; else ``$RECSQL_LOCK_TIMEOUT``, else
    :data:`~recsql.db.timeouts.DEFAULT_LOCK_TIMEOUT`) bounds every wait for a lock
    another session holds (PostgreSQL's ``lock_timeout``, SQLite's busy timeout);
    ``statement_timeout`` (seconds, PostgreSQL) every statement, for serving.
    This does not look at the tables; :func:`recsql.db.migrate.connect` does.
    """
    url = normalize_url(resolve_url(url))
    schema = resolve_schema(schema)
    seconds = timeouts.resolve_lock_timeout(lock_timeout)
    given = url
    url = namespaced_url(url, schema)
    serving = statement_timeout is not None
    options: dict[str, Any] = {
        SCHEMA_OPTION: schema,
        APPLICATION_URL_OPTION: given if url != given else None,
        timeouts.LOCK_TIMEOUT_OPTION: seconds,
        timeouts.LOCK_SETTING_OPTION: timeouts.SERVING_SETTING if serving else timeouts.LOCK_SETTING,
        timeouts.STATEMENT_SETTING_OPTION: timeouts.SERVING_SETTING if serving else "",
    }
    try:
        engine = create_engine(url, execution_options=options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)!r}: {exc}") from None
    except ImportError as exc:  # the URL's driver is not installed (or does not load)
        if make_url(url).get_driver_name() == "psycopg":
            detail = "" if isinstance(exc, ModuleNotFoundError) else f" (importing it failed: {exc})"
            raise DatabaseUnavailable(NEEDS_PSYCOPG + detail) from None
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(seconds))
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_settings(schema, seconds, statement_timeout))
    else:
        raise DatabaseUnavailable(f"recsql supports SQLite and PostgreSQL, not {engine.dialect.name} ({redact(url)})")
    timeouts.explain_timeouts(engine)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from None
    if engine.dialect.name == "postgresql" and schema is not None:
        _ensure_schema(engine, schema)
        # SQLAlchemy read current_schema() on the first connection, maybe before the
        # schema existed; reflection (the setup's checks, Alembic) must look in recsql's.
        engine.dialect.default_schema_name = schema
    return engine


def _ensure_schema(engine: Engine, schema: str) -> None:
    """Create recsql's PostgreSQL schema on first use.  Until it exists nothing resolves
    on recsql's search_path, and recsql never falls through to another schema."""
    with engine.begin() as conn:
        if conn.execute(text("SELECT to_regnamespace(:s)"), {"s": schema}).scalar() is not None:
            return
        try:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        except ProgrammingError as exc:
            engine.dispose()
            raise DatabaseUnavailable(
                f"schema {schema!r} does not exist and this role cannot create it "
                f"({str(exc.orig).strip().splitlines()[0]}); create it as its owner: CREATE SCHEMA {schema}"
            ) from None


def _sqlite_pragmas(lock_timeout: float) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module opens transactions itself, and only before INSERT/UPDATE/DELETE:
        # DDL (DROP INDEX before a bulk load, the migrations) would run outside them and
        # survive a rollback.  recsql begins every transaction itself instead (_sqlite_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The wait for another connection's write lock, bounded like PostgreSQL's lock_timeout.
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        # WAL lets applications read the views while a retrain writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Bulk loads and reads: a bigger page cache and in-memory temporary b-trees (index
        # builds, sorts).  Durability is unchanged: WAL with synchronous=NORMAL never corrupts.
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MB
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    return pragmas


def _postgres_settings(
    schema: str | None, lock_timeout: float, statement_timeout: float | None
) -> Callable[[Any, Any], None]:
    """Each new connection's settings, in one round trip: its lock timeout (and
    serving's statement timeout); no idle_session_timeout, since recsql's pooled
    connections sit idle between a retrain's phases and between requests, and one the
    server ended would fail the next statement; and, in a namespace, a search_path of
    recsql's schema alone: its unqualified names (tables, views, the migrations' DDL)
    resolve there or nowhere, never in a schema behind it that holds same-named tables."""

    def settings(dbapi_connection: Any, _record: Any) -> None:
        values = {"lock_timeout": timeouts.milliseconds(lock_timeout)}
        if statement_timeout is not None:
            values["statement_timeout"] = timeouts.milliseconds(statement_timeout)
        if dbapi_connection.info.server_version >= 140000:  # PostgreSQL 14 introduced it
            values["idle_session_timeout"] = "0"
        if schema is not None:
            values["search_path"] = f'"{schema}"'  # a plain name (resolve_schema): quoted as is
        with dbapi_connection.cursor() as cursor:
            cursor.execute(set_config_sql(values, local=False))
        dbapi_connection.commit()  # a session setting made in a rolled-back transaction is undone

    return settings


def _sqlite_begin(connection: Any) -> None:
    """BEGIN for every SQLAlchemy transaction, so DDL is inside it and rolls back with it;
    BEGIN IMMEDIATE for :func:`begin_write`'s."""
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_IMMEDIATE = "recsql_sqlite_immediate"


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write after it reads, for writers that run side by side
    (applications logging events): on SQLite it takes the write lock at BEGIN, waiting
    up to the busy timeout, because two transactions that both read and then both write
    deadlock there, and SQLite fails one at once instead of waiting.  PostgreSQL: a
    plain transaction."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn

"""Database URLs and engines: which database, and proof that it answers.

recsql speaks to SQLite and to PostgreSQL (through psycopg 3, installed by the
``recsql[postgres]`` extra and imported only when a PostgreSQL URL is used).  The URL comes from the
caller, else ``$RECSQL_DATABASE_URL``, else ``sqlite:///recsql.db``.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from recsql.errors import DatabaseUnavailable

DEFAULT_URL = "sqlite:///recsql.db"
URL_ENV = "RECSQL_DATABASE_URL"
# psycopg is an extra: `pip install recsql` serves SQLite without it.
NEEDS_PSYCOPG = "PostgreSQL needs psycopg: pip install 'recsql[postgres]'"
FALLBACK_URL_ENV = "DATABASE_URL"


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
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str | None = None) -> Engine:
    """Create an engine and prove it connects, or raise :class:`DatabaseUnavailable`.

    This does not look at the schema; :func:`recsql.db.migrate.connect` does.
    """
    url = normalize_url(resolve_url(url))
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)!r}: {exc}") from None
    except ImportError as exc:  # the URL's driver is not installed (or does not load)
        if make_url(url).get_driver_name() == "psycopg":
            detail = "" if isinstance(exc, ModuleNotFoundError) else f" (importing it failed: {exc})"
            raise DatabaseUnavailable(NEEDS_PSYCOPG + detail) from None
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name != "postgresql":
        raise DatabaseUnavailable(
            f"recsql supports SQLite and PostgreSQL, not {engine.dialect.name} ({redact(url)})"
        )
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module opens transactions itself, and only before INSERT/UPDATE/DELETE:
    # DDL (DROP INDEX before a bulk load, the migrations) would run outside them and
    # survive a rollback.  recsql begins every transaction itself instead (_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets applications read the views while a retrain writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Bulk loads and reads: a bigger page cache and in-memory temporary b-trees (index
    # builds, sorts).  Durability is unchanged: WAL with synchronous=NORMAL never corrupts.
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """BEGIN for every SQLAlchemy transaction, so DDL is inside it and rolls back with it."""
    connection.exec_driver_sql("BEGIN")

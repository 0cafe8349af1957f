"""Database URLs and engines: which database, and proof that it answers.

recsql speaks to SQLite and to PostgreSQL (through psycopg 3, installed by the
``recsql[postgres]`` extra and imported only when a PostgreSQL URL is used).  The URL comes from the
caller, else ``$RECSQL_DATABASE_URL``, else ``$DATABASE_URL``, else
``sqlite:///recsql.db``; recsql's namespace in it (:func:`make_engine`) from the caller,
else ``$RECSQL_SCHEMA``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

from recsql.errors import DatabaseUnavailable, InvalidParameter

DEFAULT_URL = "sqlite:///recsql.db"
URL_ENV = "RECSQL_DATABASE_URL"
# psycopg is an extra: `pip install recsql` serves SQLite without it.
NEEDS_PSYCOPG = "PostgreSQL needs psycopg: pip install 'recsql[postgres]'"
FALLBACK_URL_ENV = "DATABASE_URL"
SCHEMA_ENV = "RECSQL_SCHEMA"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def resolve_schema(schema: str | None = None) -> str | None:
    """recsql's namespace: explicit, else ``$RECSQL_SCHEMA``, else none (the database's
    default namespace, as before namespaces existed)."""
    schema = schema or os.environ.get(SCHEMA_ENV) or None
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidParameter(f"a recsql schema is a plain name (letters, digits, _), not {schema!r}")
    return schema


def namespaced_url(url: str, schema: str | None) -> str:
    """SQLite keeps a namespace's objects in a file of their own beside the application's
    (``shop.db`` -> ``shop.recsql.db``), which is recsql's main database; the
    application's file is attached as ``app``."""
    parsed = make_url(url)
    if schema is None or parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(str(parsed.database))
    return parsed.set(database=str(path.with_name(f"{path.stem}.{schema}{path.suffix or '.db'}"))).render_as_string(
        hide_password=False)


def make_engine(url: str | None = None, schema: str | None = None) -> Engine:
    """Create an engine and prove it connects, or raise :class:`DatabaseUnavailable`.

    ``schema`` (else ``$RECSQL_SCHEMA``) gives recsql a namespace of its own in the
    application's database: on PostgreSQL a schema, first on every connection's
    ``search_path`` (the application's tables stay reachable behind it); on SQLite a
    file beside the application's, with the application's attached as ``app``.
    This does not look at the tables; :func:`recsql.db.migrate.connect` does.
    """
    url = normalize_url(resolve_url(url))
    schema = resolve_schema(schema)
    application_file = make_url(url).database if url.startswith("sqlite") else None
    url = namespaced_url(url, schema)
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
        if schema is not None and application_file and application_file != engine.url.database:
            event.listen(engine, "connect", _attach_application(application_file))
    elif engine.dialect.name == "postgresql" and schema is not None:
        event.listen(engine, "connect", _search_path_first(schema))
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
    if engine.dialect.name == "postgresql" and schema is not None:
        _ensure_schema(engine, schema)
        # SQLAlchemy read current_schema() on the first connection, before our
        # search_path; reflection (the setup's checks, Alembic) must look in recsql's.
        engine.dialect.default_schema_name = schema
    return engine


def _ensure_schema(engine: Engine, schema: str) -> None:
    """Create recsql's PostgreSQL schema on first use.  Until it exists the search_path
    skips it, and recsql must never fall through to same-named tables behind it."""
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


def _search_path_first(schema: str) -> Callable[[Any, Any], None]:
    """Put recsql's schema first on a new connection's search_path: its unqualified names
    (tables, views, the migrations' DDL) resolve there, the application's behind it."""

    def set_path(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('search_path', quote_ident(%s) || ', ' || current_setting('search_path'), false)",
                (schema,),
            )
        dbapi_connection.commit()  # a session setting made in a rolled-back transaction is undone

    return set_path


def _attach_application(path: str) -> Callable[[Any, Any], None]:
    """Attach the application's SQLite file as ``app``: names recsql's file lacks are
    looked up there, so sources read the application's tables unqualified."""

    def attach(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("ATTACH DATABASE ? AS app", (path,))

    return attach


def _sqlite_begin(connection: Any) -> None:
    """BEGIN for every SQLAlchemy transaction, so DDL is inside it and rolls back with it."""
    connection.exec_driver_sql("BEGIN")

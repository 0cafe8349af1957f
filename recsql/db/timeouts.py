"""Waits that end: every recsql connection gives up on a lock after a bounded time, and
says which lock and which setting to change.

An application may hold a lock recsql needs (``LOCK TABLE ratings``, a long migration,
a forgotten transaction).  recsql's connections set PostgreSQL's ``lock_timeout`` (SQLite:
the busy timeout) to ``--lock-timeout`` / ``$RECSQL_LOCK_TIMEOUT`` seconds, default
:data:`DEFAULT_LOCK_TIMEOUT`; serving also bounds each query (``statement_timeout``,
``Recommender(timeout=)``).  When a wait ends, :func:`timeout_error` turns the driver's
error into one :class:`~recsql.errors.DatabaseUnavailable` line that names the tables
other sessions hold locked (PostgreSQL's ``pg_locks``, read on a connection of its own)
and the setting that allows a longer wait.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from recsql.errors import DatabaseUnavailable, InvalidParameter

LOCK_TIMEOUT_ENV = "RECSQL_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a command waits for a lock another session holds before it gives up."""

LOCK_SETTING = f"--lock-timeout SECONDS (or ${LOCK_TIMEOUT_ENV}; lock_timeout= in Python)"
"""How a user of recsql's commands and API allows longer waits (named in the messages)."""

SERVING_SETTING = "Recommender(..., timeout=SECONDS)"
"""How an application allows a serving call longer (its statements and lock waits)."""

LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"  # PostgreSQL's SQLSTATEs

# Execution options (set on an engine by make_engine, or on a connection by whoever set
# its timeouts) that say what a timed-out wait's message names: the lock timeout in
# seconds, the setting that allows longer lock waits, and the one that allows a longer
# statement.  RAW_ERRORS_OPTION leaves a connection's errors alone (the writer lock's
# NOWAIT attempt handles its own refusal).
LOCK_TIMEOUT_OPTION = "recsql_lock_timeout"
LOCK_SETTING_OPTION = "recsql_lock_setting"
STATEMENT_SETTING_OPTION = "recsql_statement_setting"
RAW_ERRORS_OPTION = "recsql_raw_errors"


def resolve_lock_timeout(seconds: float | str | None = None) -> float:
    """The lock timeout: explicit, else ``$RECSQL_LOCK_TIMEOUT``, else the default."""
    if seconds is None:
        seconds = os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidParameter(f"a lock timeout is a number of seconds above 0, not {seconds!r}")
    return value


def milliseconds(seconds: float) -> str:
    """A PostgreSQL duration setting's value (at least 1 ms: 0 would mean no limit)."""
    return f"{max(1, round(seconds * 1000))}ms"


def timeout_kind(error: BaseException) -> str | None:
    """``"lock"`` for a wait for a lock that timed out, ``"statement"`` for a statement
    cancelled by its timeout, None for anything else (``error``: the driver's error)."""
    state = getattr(error, "sqlstate", None)
    if state == LOCK_NOT_AVAILABLE:
        return "lock"
    if state == QUERY_CANCELED and "timeout" in str(error):
        return "statement"
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        return "lock"
    return None


def timeout_error(
    error: BaseException,
    engine: Engine | None,
    *,
    lock_timeout: float | None,
    setting: str = LOCK_SETTING,
    statement_setting: str = "",
) -> DatabaseUnavailable | None:
    """The one-line error for a timed-out wait or statement; None if ``error`` is neither."""
    kind = timeout_kind(error)
    if kind is None:
        return None
    waited = f" {lock_timeout:g} s" if lock_timeout is not None else ""
    if isinstance(error, sqlite3.OperationalError):
        return DatabaseUnavailable(
            f"the database file is locked by another connection's write and recsql waited{waited} for it; "
            f"wait longer with {setting}, or end the other writer"
        )
    # A statement cancelled by its timeout may have been waiting for a lock: say which are held.
    held = locked_tables(engine) if engine is not None else []
    what = f"; held now: {', '.join(held)}" if held else ""
    if kind == "statement":
        return DatabaseUnavailable(
            f"the query ran longer than its time limit and was cancelled (statement_timeout){what}"
            + (f"; allow longer with {statement_setting}" if statement_setting else "")
        )
    return DatabaseUnavailable(
        f"gave up after waiting{waited} for a lock another session holds (lock_timeout){what}; "
        f"wait longer with {setting}, or end the session that holds it"
    )


# Locks that block reads (ACCESS EXCLUSIVE) or writes (SHARE and stronger) of a table.
_BLOCKING = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
_LOCKED_SQL = """
SELECT n.nspname, c.relname, l.mode, l.pid
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode = ANY(%s) AND c.relname <> 'recsql_lock' AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY l.mode = 'AccessExclusiveLock' DESC, n.nspname, c.relname
LIMIT 5
"""


def locked_tables(engine: Engine) -> list[str]:
    """The tables other sessions hold locked in a mode that blocks reads or writes, as
    ``schema.table (Mode by pid N)``; read on a connection of its own (the one that timed
    out may be in a failed transaction).  Empty if none, or if that cannot be read."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        import psycopg

        args, params = engine.dialect.create_connect_args(engine.url)
        params = {k: v for k, v in params.items() if k != "context"}
        with psycopg.connect(*args, **params, connect_timeout=3, autocommit=True) as raw:
            raw.execute("SET statement_timeout = 2000")
            rows = raw.execute(_LOCKED_SQL, (list(_BLOCKING),)).fetchall()
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the error it explains
        return []
    return [f"{schema}.{table} ({mode.removesuffix('Lock')} by pid {pid})" for schema, table, mode, pid in rows]


def explained(error: BaseException, engine: Engine, options: Mapping[str, Any]) -> DatabaseUnavailable | None:
    """:func:`timeout_error` for an error met on a connection with these execution
    options (None when it is no timeout, or the connection wants its errors raw)."""
    if options.get(RAW_ERRORS_OPTION):
        return None
    return timeout_error(
        getattr(error, "orig", None) or error,
        engine,
        lock_timeout=options.get(LOCK_TIMEOUT_OPTION),
        setting=options.get(LOCK_SETTING_OPTION, LOCK_SETTING),
        statement_setting=options.get(STATEMENT_SETTING_OPTION, ""),
    )


def explain_timeouts(engine: Engine) -> None:
    """Make ``engine``'s timed-out waits raise :func:`timeout_error`'s message, as its
    connections' execution options describe them (:func:`explained`)."""

    def handle(context: ExceptionContext) -> Any:
        options = (
            context.execution_context.execution_options
            if context.execution_context
            else context.engine.get_execution_options()
            if context.engine
            else {}
        )
        return explained(context.original_exception, context.engine, options) if context.engine else None

    event.listen(engine, "handle_error", handle)

"""The database's failures as RecsqlErrors, for every serving call in one place.

A deployment's database fails in ways the application did not cause and cannot fix in
code: the server is down, a connection was lost, a table is locked or a query timed
out, recsql's tables are missing or in another schema, a role lacks a grant.
:func:`database_errors` wraps each public serving method so these become
:class:`~recsql.errors.DatabaseUnavailable` or :class:`~recsql.errors.SchemaError`, each
with an ``http_status`` and a one-line hint, and an application's one handler answers
them instead of showing a traceback.  Failures that are recsql's own bugs (bad SQL, a
constraint recsql broke) keep their traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar, runtime_checkable

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from recsql.db.facts import recsql_schemas
from recsql.db.timeouts import SERVING_SETTING, timeout_error
from recsql.errors import DatabaseUnavailable, RecsqlError, SchemaError

P = ParamSpec("P")
R = TypeVar("R")


@runtime_checkable
class Serving(Protocol):
    """What translating needs of the reader a call ran on: its engine, timeout, namespace."""

    timeout: float
    schema: str | None

    def _engine(self) -> Engine: ...


def database_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn the failures of the database a deployment causes (server down, connection
    lost, locked, timed out, tables missing, privileges missing) into RecsqlErrors, so an
    application's one handler answers them with a status instead of a traceback."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (DBAPIError, PoolTimeout, DisconnectionError) as exc:
            reader = args[0]
            assert isinstance(reader, Serving)
            translated = translate(exc, reader)
            if translated is None:
                raise
            raise translated from exc

    return wrapper


def translate(exc: Exception, reader: Serving) -> RecsqlError | None:
    """The RecsqlError for a database failure, or None for one that is recsql's bug
    (bad SQL, a constraint recsql broke): those keep their traceback."""
    orig = getattr(exc, "orig", None)
    said = str(orig or exc).strip()
    reason = said.splitlines()[0] if said else type(exc).__name__
    state = getattr(orig, "sqlstate", None)  # PostgreSQL's error code (psycopg)
    waited = timeout_error(
        orig or exc,
        reader._engine(),
        lock_timeout=reader.timeout,
        setting=SERVING_SETTING,
        statement_setting=SERVING_SETTING,
    )
    if waited is not None:
        return waited
    if state in ("42P01", "42703") or reason.startswith(("no such table", "no such column")):
        elsewhere = recsql_schemas(reader._engine())
        if elsewhere and reader.schema not in elsewhere:
            return SchemaError(
                f"{reason}: recsql's tables are in schema {', '.join(elsewhere)}, not on this "
                f"connection's search_path; pass schema={elsewhere[0]!r} to Recommender"
            )
        return SchemaError(
            f"{reason}: a table or column serving reads is missing (`recsql db upgrade` sets up recsql's own)"
        )
    if state == "42501":
        return DatabaseUnavailable(
            f"{reason}: grant the application's role access with "
            f"`recsql db grant-reader ROLE` (again after each `recsql db upgrade`)"
        )
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | DisconnectionError):
        return DatabaseUnavailable(f"database error: {reason}")
    return None

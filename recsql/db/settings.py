"""Session settings for one call on a connection recsql was lent (an application's
Engine, Connection or Session): applied for the call and put back afterwards, so the
application's own queries on the same connection never inherit recsql's.

PostgreSQL: ``set_config(name, value, true)`` (transaction-local) for each setting, the
previous values read in the same statement and restored at the end (a failed
transaction needs no restoring: its rollback undoes them).  SQLite: the busy timeout
pragma, set and restored (its settings belong to the connection, not to a transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from recsql.db.timeouts import milliseconds


def serving_settings(dialect: str, timeout: float, schema: str | None) -> dict[str, str]:
    """What a serving call sets: its statement and lock timeouts (seconds) and, in a
    namespace, a search_path of recsql's schema alone."""
    if dialect != "postgresql":
        return {"busy_timeout": str(int(timeout * 1000))}
    settings = {"statement_timeout": milliseconds(timeout), "lock_timeout": milliseconds(timeout)}
    if schema is not None:
        settings["search_path"] = f'"{schema}"'
    return settings


@contextmanager
def applied(conn: Connection, settings: Mapping[str, str], *, restore: bool = True) -> Iterator[Connection]:
    """``conn`` with ``settings`` in force for the block; the previous values come back
    afterwards when ``restore`` (PostgreSQL's local settings end with the transaction
    anyway: a borrowed connection rolled back on return needs no restoring)."""
    if conn.dialect.name == "postgresql":
        yield from _postgres(conn, settings, restore)
    else:
        yield from _sqlite(conn, settings)


def _postgres(conn: Connection, settings: Mapping[str, str], restore: bool) -> Iterator[Connection]:
    if not restore:  # a borrowed connection's transaction ends with the call: nothing to put back
        calls = ", ".join(f"set_config('{name}', '{value}', true)" for name, value in settings.items())
        conn.exec_driver_sql(f"SELECT {calls}")  # recsql's own names and values, no parameters
        yield conn
        return
    names = list(settings)
    olds = ", ".join(f"current_setting(:n{i})" for i in range(len(names)))
    news = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(names)))
    params = {**{f"n{i}": n for i, n in enumerate(names)}, **{f"v{i}": settings[n] for i, n in enumerate(names)}}
    # The old values are read in a subquery that runs first (OFFSET 0 keeps it apart).
    row = conn.execute(text(f"SELECT old.*, {news} FROM (SELECT {olds} OFFSET 0) AS old"), params).one()
    previous = dict(zip(names, row[: len(names)]))
    try:
        yield conn
    finally:
        if restore:
            try:
                conn.execute(text(f"SELECT {news}"), {**{f"n{i}": n for i, n in enumerate(names)},
                                                     **{f"v{i}": previous[n] for i, n in enumerate(names)}})
            except SQLAlchemyError:
                pass  # the transaction failed: its rollback undoes the settings


def _sqlite(conn: Connection, settings: Mapping[str, str]) -> Iterator[Connection]:
    previous: dict[str, Any] = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in settings}
    for name, value in settings.items():
        conn.exec_driver_sql(f"PRAGMA {name} = {int(value)}")
    try:
        yield conn
    finally:
        for name, old in previous.items():
            conn.exec_driver_sql(f"PRAGMA {name} = {int(old)}")

"""PostgreSQL settings recsql puts on its connections (:func:`set_config_sql`, one
statement for all of them), and on a connection it was lent (an application's Engine,
Connection or Session) for one call, put back afterwards so the application's own
queries on the same connection never inherit recsql's (:func:`applied`).

On a lent connection: ``set_config(name, value, true)`` (transaction-local), the previous
values read in the same statement and restored at the end (a failed transaction needs no
restoring: its rollback undoes them; a borrowed connection's transaction ends with the
call).  SQLite: the busy timeout pragma, set and restored (its settings belong to the
connection, not to a transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from recsql.db.timeouts import milliseconds


def set_config_sql(values: Mapping[str, str], *, local: bool) -> str:
    """One ``SELECT set_config(...), ...`` for recsql's own settings (names and values
    recsql chose, never user input: they are written as literals); ``local``: for the
    current transaction only."""
    scope = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{name}', '{value}', {scope})" for name, value in values.items())


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
        conn.exec_driver_sql(set_config_sql(settings, local=True))
        yield conn
        return
    # The old values are read in a subquery that runs first (OFFSET 0 keeps it apart).
    olds = ", ".join(f"current_setting('{name}')" for name in settings)
    row = conn.exec_driver_sql(
        f"SELECT old.*, {set_config_sql(settings, local=True).removeprefix('SELECT ')} "
        f"FROM (SELECT {olds} OFFSET 0) AS old"
    ).one()
    previous = dict(zip(settings, row[: len(settings)]))
    try:
        yield conn
    finally:
        try:  # the application's own values, so bound as parameters
            calls = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(previous)))
            conn.execute(
                text(f"SELECT {calls}"),
                {
                    key: value
                    for i, (name, old) in enumerate(previous.items())
                    for key, value in ((f"n{i}", name), (f"v{i}", old))
                },
            )
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

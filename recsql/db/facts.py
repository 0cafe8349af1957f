"""Facts about the database itself, as the admin's views and serving's messages need
them: how many bytes a table takes on disk, and which namespaces hold recsql's tables.

Each fact is read from the database's own catalogue (PostgreSQL's size functions and
``information_schema``, SQLite's ``dbstat``), and is None or empty where the database
cannot say, since a fact here only ever decorates a report or an error message.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from recsql.db.migrate import VERSION_TABLE


def table_bytes(conn: Connection, table: str) -> int | None:
    """A table's bytes on disk with its indexes (None where the database cannot say:
    an SQLite built without the ``dbstat`` table)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}).scalar_one())
    try:
        size = conn.execute(
            text("SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = :t)"),
            {"t": table},
        ).scalar()
    except OperationalError:  # no dbstat in this SQLite build
        return None
    return int(size or 0)


def recsql_schemas(engine: Engine) -> list[str]:
    """The PostgreSQL schemas that hold recsql's tables (its version table), for a
    message: read on a connection of its own; empty if unknown."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT table_schema FROM information_schema.tables WHERE table_name = :t ORDER BY table_schema"
                    ),
                    {"t": VERSION_TABLE},
                ).scalars()
            )
    except DBAPIError:
        return []

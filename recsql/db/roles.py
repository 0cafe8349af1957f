"""Least privilege (PostgreSQL): a reader role for the applications that read
recommendations, and a source role recsql reads the application's tables as.

A reader role gets SELECT on recsql's views and on what the Python serving API reads
(the model's factors, lists and titles, the schema version) in recsql's namespace, and
nothing else: not the raw ratings, not ``models`` (whose parameters hold a source
mapping's query, and whose ``error`` column an operator's messages), no writes, no DDL,
and not the writer lock's table, so it can never hold up a retrain.  Views are
recreated by migrations, which drops their grants, so the grant is run again after
every ``recsql db upgrade``.

A source role gets SELECT on the application tables a source mapping reads, and nothing
else; recsql's own role is made a member so it can ``SET LOCAL ROLE`` to it for those
reads (:func:`recsql.data.source.reading`), whatever the mapping's query tries.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, text

from recsql.db.engine import schema_of
from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import RECSQL_VIEWS
from recsql.errors import InvalidParameter

# What serving reads besides the views (recsql.serving, recsql.store's loaders).
SERVING_TABLES = (
    "movies",
    "movie_features",
    "movie_biases",
    "user_features",
    "user_biases",
    "movie_similarities",
    "user_recommendations",
    "movie_popularity",
    "rating_scale",
    "user_keys",
    "movie_keys",
    VERSION_TABLE,
)
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
NO_ROLES = "SQLite has no roles: give readers a read-only URL instead, e.g. sqlite:///file:recsql.db?mode=ro&uri=true"


def grant_reader(engine: Engine, role: str) -> list[str]:
    """Grant ``role`` read access to recommendations only, in the engine's recsql
    namespace and no other, and the right to append to ``events`` (what the application
    serving recommendations logs; it can neither read nor change them); returns what
    was granted."""
    if engine.dialect.name != "postgresql":
        raise InvalidParameter(NO_ROLES)
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        _check_role(conn, role)
        schema = schema_of(engine) or conn.execute(text("SELECT current_schema()")).scalar_one()
        objects = [*RECSQL_VIEWS, *SERVING_TABLES]
        conn.execute(text(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}"))
        conn.execute(
            text(f"GRANT SELECT ON {', '.join(f'{quote(schema)}.{quote(o)}' for o in objects)} TO {quote(role)}")
        )
        events = f"{quote(schema)}.{quote('events')}"
        conn.execute(text(f"GRANT INSERT ON {events} TO {quote(role)}"))
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": events}).scalar_one()
        conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {quote(role)}"))
    return [*objects, "events (INSERT)"]


def grant_source(engine: Engine, role: str, tables: list[str]) -> list[str]:
    """Let ``role`` read ``tables`` of the application (names as a source mapping gives
    them: ``table`` or ``schema.table``, resolved in the application's namespace) and
    make recsql's own role a member, so a mapping with ``role = ROLE`` reads as it."""
    if engine.dialect.name != "postgresql":
        raise InvalidParameter(NO_ROLES)
    if not tables:
        raise InvalidParameter("name the tables (or views) the source reads")
    for table in tables:
        if not _TABLE.fullmatch(table):
            raise InvalidParameter(f"{table!r} is not a plain table name (letters, digits, _; schema.table)")
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        _check_role(conn, role)
        conn.exec_driver_sql("SET LOCAL search_path TO DEFAULT")  # the application's namespace
        granted = []
        for table in tables:
            found = conn.execute(
                text(
                    "SELECT to_regclass(:t)::text, (SELECT n.nspname FROM pg_class c JOIN "
                    "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:t))"
                ),
                {"t": table},
            ).one()
            if found[0] is None:
                raise InvalidParameter(f"no table or view {table!r} in the application's namespace")
            conn.execute(text(f"GRANT USAGE ON SCHEMA {quote(found[1])} TO {quote(role)}"))
            conn.execute(text(f"GRANT SELECT ON {'.'.join(quote(p) for p in table.split('.'))} TO {quote(role)}"))
            granted.append(table)
        me = conn.execute(text("SELECT current_user")).scalar_one()
        if me != role:
            conn.execute(text(f"GRANT {quote(role)} TO {quote(me)}"))
    return granted


def _check_role(conn: Connection, role: str) -> None:
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        quote = conn.dialect.identifier_preparer.quote
        raise InvalidParameter(
            f"role {role!r} does not exist; create it first, e.g. CREATE ROLE {quote(role)} LOGIN PASSWORD '...'"
        )

"""Least privilege for the applications that read recommendations (PostgreSQL).

A reader role gets SELECT on recsql's views and on what the Python serving API reads
(the model's factors, lists and titles, the schema version), and nothing else: no
raw ratings, no writes, no DDL.  Views are recreated by migrations, which drops their
grants, so the grant is run again after every ``recsql db upgrade``.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import RECSQL_VIEWS
from recsql.errors import InvalidParameter

# What serving reads besides the views (recsql.serving, recsql.store's loaders).
SERVING_TABLES = (
    "models", "movies", "movie_features", "movie_biases", "user_features", "user_biases",
    "movie_similarities", "user_recommendations", "movie_popularity", "rating_scale", "user_keys", "movie_keys",
    VERSION_TABLE,
)


def grant_reader(engine: Engine, role: str) -> list[str]:
    """Grant ``role`` read access to recommendations only; returns what was granted."""
    if engine.dialect.name != "postgresql":
        raise InvalidParameter(
            "SQLite has no roles: give readers a read-only URL instead, "
            "e.g. sqlite:///file:recsql.db?mode=ro&uri=true"
        )
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
            raise InvalidParameter(
                f"role {role!r} does not exist; create it first, e.g. "
                f"CREATE ROLE {quote(role)} LOGIN PASSWORD '...'"
            )
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        objects = [*RECSQL_VIEWS, *SERVING_TABLES]
        conn.execute(text(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}"))
        conn.execute(text(f"GRANT SELECT ON {', '.join(quote(o) for o in objects)} TO {quote(role)}"))
    return objects

"""What the migrations share: downgrades that keep model outputs for the way back up.

A downgrade takes what its revision added out of the views (the older recsql never
sees it) but keeps the tables and columns that hold model outputs, so rolling recsql
back and upgrading again serves every model exactly as before.  Only
``recsql db downgrade base`` deletes data.  The upgrade adopts what was kept, fills
in what the older version's models lack, and deletes rows of models pruned or failed
in between (the older prune did not know these tables): every upgrade from 0003 on
ends with :func:`drop_orphans`, since whichever revision a downgrade went to, at
least the newest one runs on the way back up.  A new migration must do the same.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recsql.errors import SchemaError

# Every table a later revision adds, with columns it has had since: 0001's downgrade (to
# base) drops those kept.  A table of one of these names without those columns is not
# recsql's (an application's ``events``, say): it is never adopted, emptied or dropped.
KEPT_TABLES: dict[str, frozenset[str]] = {
    "user_biases": frozenset({"model_id", "user_id", "bias"}),
    "movie_biases": frozenset({"model_id", "movie_id", "bias"}),
    "user_recommendations": frozenset({"model_id", "user_id", "rank", "movie_id", "predicted_rating"}),
    "movie_popularity": frozenset({"model_id", "rank", "movie_id", "score", "n_ratings", "mean_rating"}),
    "rating_scale": frozenset({"id", "low", "high"}),
    "user_keys": frozenset({"user_id", "user_key"}),
    "movie_keys": frozenset({"movie_id", "movie_key"}),
    "events": frozenset({"id", "kind", "user_id", "movie_id", "at", "model_id", "list", "rank", "value"}),
    "model_splits": frozenset({"id", "model_a", "model_b", "buckets", "multiplier", "started_at", "ended_at"}),
}
# Kept tables that are not a model's outputs (catalogue data, what applications logged,
# the history of splits): drop_orphans leaves their rows alone.
CATALOGUE_TABLES = ("rating_scale", "user_keys", "movie_keys", "events", "model_splits")
SERVABLE = "('running', 'ready', 'active', 'retired')"


def _columns(table: str) -> set[str] | None:
    """The columns of ``table`` in recsql's namespace, or None when it has no such table."""
    if context.is_offline_mode():  # writing SQL for a database we cannot see
        return None
    bind = op.get_bind()
    inspector, schema = sa.inspect(bind), bind.dialect.default_schema_name  # recsql's namespace only
    if not inspector.has_table(table, schema=schema):
        return None
    return {c["name"] for c in inspector.get_columns(table, schema=schema)}


def is_ours(table: str) -> bool:
    """Whether a kept table of that name is there and is recsql's (has its columns)."""
    found = _columns(table)
    return found is not None and KEPT_TABLES[table] <= found


def create_table_unless_kept(name: str, *items: sa.schema.SchemaItem) -> None:
    """``op.create_table``, unless an earlier downgrade kept the table; refused (nothing
    changed: the upgrade's transaction rolls back) when a table of that name is not
    recsql's, rather than adopting it."""
    found = _columns(name)
    if found is None:
        op.create_table(name, *items)
    elif not is_ours(name):
        raise SchemaError(
            f"the database has a table {name} that is not recsql's (its columns: {', '.join(sorted(found))}); "
            f"recsql will not take it over. Give recsql a namespace of its own: --schema recsql "
            f"(or $RECSQL_SCHEMA=recsql; recsql.connect(url, schema='recsql'))"
        )


def add_column_unless_kept(table: str, column: sa.Column) -> None:
    if column.name not in (_columns(table) or set()):
        op.add_column(table, column)


def drop_orphans() -> None:
    """Delete the kept tables' rows of models that can no longer be served."""
    for table in KEPT_TABLES:
        if table not in CATALOGUE_TABLES and is_ours(table):
            op.execute(f"DELETE FROM {table} WHERE model_id NOT IN (SELECT id FROM models WHERE status IN {SERVABLE})")

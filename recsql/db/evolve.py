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

# Every table a later revision adds; 0001's downgrade (to base) drops those kept.
KEPT_TABLES = (
    "user_biases",
    "movie_biases",
    "user_recommendations",
    "movie_popularity",
    "rating_scale",
    "user_keys",
    "movie_keys",
    "events",
    "model_splits",
)
# Kept tables that are not a model's outputs (catalogue data, what applications logged,
# the history of splits): drop_orphans leaves their rows alone.
CATALOGUE_TABLES = ("rating_scale", "user_keys", "movie_keys", "events", "model_splits")
SERVABLE = "('running', 'ready', 'active', 'retired')"


def _kept(table: str, column: str | None = None) -> bool:
    if context.is_offline_mode():  # writing SQL for a database we cannot see
        return False
    bind = op.get_bind()
    inspector, schema = sa.inspect(bind), bind.dialect.default_schema_name  # recsql's namespace only
    if column is None:
        return inspector.has_table(table, schema=schema)
    return column in {c["name"] for c in inspector.get_columns(table, schema=schema)}


def create_table_unless_kept(name: str, *items: sa.schema.SchemaItem) -> None:
    """``op.create_table``, unless an earlier downgrade kept the table."""
    if not _kept(name):
        op.create_table(name, *items)


def add_column_unless_kept(table: str, column: sa.Column) -> None:
    if not _kept(table, column.name):
        op.add_column(table, column)


def drop_orphans() -> None:
    """Delete the kept tables' rows of models that can no longer be served."""
    for table in KEPT_TABLES:
        if table not in CATALOGUE_TABLES and _kept(table):
            op.execute(f"DELETE FROM {table} WHERE model_id NOT IN (SELECT id FROM models WHERE status IN {SERVABLE})")

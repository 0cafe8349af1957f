"""A writer lock readers cannot take, and an ``active_model`` view without secrets.

Revision ID: 0010_writer_lock
Revises: 0009_id_keys
Create Date: 2026-12-02

Retrains, activations and prunes hold an EXCLUSIVE lock on ``recsql_lock`` (no rows:
the lock is the point; :mod:`recsql.db.lock`), which needs UPDATE rights a reader role
never gets, instead of an advisory lock any session could take.  ``active_model``, the
view readers may select, no longer shows a run's source mapping (a source query's
text, comments included) or its test file path; ``from_source`` says whether the model
was trained from the application's tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import drop_orphans

revision = "0010_writer_lock"
down_revision = "0009_id_keys"
branch_labels = None
depends_on = None

# The settings a reader may see: everything but where the ratings came from.
PUBLIC_PARAMS = {
    "postgresql": "(params::jsonb - 'source' - 'test_file')::json",
    "sqlite": "json_remove(params, '$.source', '$.test_file')",
}
FROM_SOURCE = {
    "postgresql": "(params->>'source') IS NOT NULL",
    "sqlite": "json_extract(params, '$.source') IS NOT NULL",
}

ACTIVE_MODEL_V3 = """
CREATE VIEW active_model AS
SELECT id AS model_id, created_at, finished_at, activated_at, algorithm, {params} AS params, metrics,
       timings, n_users, n_movies, n_ratings, global_mean, rating_min, rating_max, {from_source} AS from_source
FROM models
WHERE status = 'active'
"""

ACTIVE_MODEL_V2 = """
CREATE VIEW active_model AS
SELECT id AS model_id, created_at, finished_at, activated_at, algorithm, params, metrics,
       timings, n_users, n_movies, n_ratings, global_mean, rating_min, rating_max
FROM models
WHERE status = 'active'
"""


def upgrade() -> None:
    op.create_table("recsql_lock", sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_recsql_lock")))
    dialect = op.get_context().dialect.name
    op.execute("DROP VIEW active_model")
    op.execute(ACTIVE_MODEL_V3.format(params=PUBLIC_PARAMS[dialect], from_source=FROM_SOURCE[dialect]))
    drop_orphans()


def downgrade() -> None:
    op.execute("DROP VIEW active_model")
    op.execute(ACTIVE_MODEL_V2)
    op.drop_table("recsql_lock")

"""Biases and the rating range: what a prediction needs besides the features.

Revision ID: 0003_biases
Revises: 0002_views
Create Date: 2026-11-26

prediction = models.global_mean + user_biases.bias + movie_biases.bias
             + SUM(user_features.value * movie_features.value), clipped to
             [models.rating_min, models.rating_max] when those are set.
Runs made before this revision came from the tutorial's solver, which has no biases:
the data migration gives them a global mean of 0 and zero biases, so the prediction
query works for them unchanged (rating_min/max stay NULL: their predictions were never
clipped).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import add_column_unless_kept, create_table_unless_kept, drop_orphans

revision = "0003_biases"
down_revision = "0002_views"
branch_labels = None
depends_on = None

ACTIVE_MODEL_V2 = """
CREATE VIEW active_model AS
SELECT id AS model_id, created_at, finished_at, activated_at, algorithm, params, metrics,
       timings, n_users, n_movies, n_ratings, global_mean, rating_min, rating_max
FROM models
WHERE status = 'active'
"""

ACTIVE_MODEL_V1 = """
CREATE VIEW active_model AS
SELECT id AS model_id, created_at, finished_at, activated_at, algorithm, params, metrics,
       timings, n_users, n_movies, n_ratings
FROM models
WHERE status = 'active'
"""


def upgrade() -> None:
    op.execute("DROP VIEW active_model")
    for column in ("global_mean", "rating_min", "rating_max"):
        add_column_unless_kept("models", sa.Column(column, sa.Float(), nullable=True))
    for table, key in (("user_biases", "user_id"), ("movie_biases", "movie_id")):
        create_table_unless_kept(
            table,
            sa.Column("model_id", sa.Integer(), nullable=False),
            sa.Column(key, sa.BigInteger(), nullable=False),
            sa.Column("bias", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("model_id", key, name=f"pk_{table}"),
        )
    # Runs without biases (made before this revision, or after a downgrade to it).
    op.execute("UPDATE models SET global_mean = 0 WHERE status <> 'failed' AND global_mean IS NULL")
    for table, key, features in (("user_biases", "user_id", "user_features"),
                                 ("movie_biases", "movie_id", "movie_features")):
        op.execute(f"INSERT INTO {table} (model_id, {key}, bias) SELECT DISTINCT model_id, {key}, 0 FROM {features} "
                   f"WHERE model_id NOT IN (SELECT model_id FROM {table})")
    op.execute(ACTIVE_MODEL_V2)
    drop_orphans()


def downgrade() -> None:
    # The bias tables and columns stay for the way back up (recsql.db.evolve).
    op.execute("DROP VIEW active_model")
    op.execute(ACTIVE_MODEL_V1)

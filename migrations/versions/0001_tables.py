"""Tables: catalogue, ratings, training runs, features, similarities.

Revision ID: 0001_tables
Revises:
Create Date: 2026-11-26

Written by hand (frozen: it must not change when recsql/models.py changes later).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recsql.db.evolve import KEPT_TABLES, is_ours

revision = "0001_tables"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _model_id() -> sa.Column:
    return sa.Column("model_id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "movies",
        sa.Column("movie_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("genres", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("movie_id", name="pk_movies"),
    )
    op.create_table(
        "ratings",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("rated_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
    )
    op.create_index("ix_ratings_user_id_movie_id", "ratings", ["user_id", "movie_id"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("n_users", sa.Integer(), nullable=True),
        sa.Column("n_movies", sa.Integer(), nullable=True),
        sa.Column("n_ratings", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
    )
    op.create_index(
        "uq_models_one_active",
        "models",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    for table, key in (("user_features", "user_id"), ("movie_features", "movie_id")):
        op.create_table(
            table,
            _model_id(),
            sa.Column(key, sa.BigInteger(), nullable=False),
            sa.Column("feature", sa.Integer(), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("model_id", key, "feature", name=f"pk_{table}"),
        )
    op.create_table(
        "movie_similarities",
        _model_id(),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("similar_movie_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "movie_id", "rank", name="pk_movie_similarities"),
    )


def downgrade() -> None:
    for table in KEPT_TABLES:  # what later revisions' downgrades kept (recsql.db.evolve), if recsql's
        if context.is_offline_mode():  # SQL for a database we cannot see: as before
            op.execute(f"DROP TABLE IF EXISTS {table}")
        elif is_ours(table):
            op.drop_table(table)
    for table in ("movie_similarities", "movie_features", "user_features"):
        op.drop_table(table)
    op.drop_index("uq_models_one_active", table_name="models")
    op.drop_table("models")
    op.drop_index("ix_ratings_user_id_movie_id", table_name="ratings")
    op.drop_table("ratings")
    op.drop_table("movies")

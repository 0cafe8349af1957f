"""Events applications log, and traffic split between two models.

Revision ID: 0011_events_split
Revises: 0010_writer_lock
Create Date: 2026-12-03

``events`` holds what applications saw users do: the movies shown to them (and by which
model) and what they clicked, watched, rated or bought; the online metrics compare two
models from it.  ``model_splits`` holds traffic splits: while one runs,
``recommended_movies`` serves the users whose bucket falls below its share from model
B's rows (those B has a list for: a user it does not know keeps the active model's) and
everyone else from the active model's, so the application's SQL does not change.  A user's bucket is

    (ABS(user_id % 2147483647) + 1) * multiplier % 2147483647 % 10000

(a multiplicative hash modulo the prime 2^31 - 1, whose multiplier each split takes from
its model B, so that each experiment draws its own users; every product stays below
2^62, so it is exact in BIGINT and SQLite's integers alike, and
:mod:`recsql.store.split` computes the same).
Both tables are kept by a downgrade, like the catalogue's; the way back up ends a split
whose models the older version retired or pruned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import create_table_unless_kept, drop_orphans
from recsql.db.tables import UnixNow

revision = "0011_events_split"
down_revision = "0010_writer_lock"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KINDS = "('shown', 'clicked', 'watched', 'rated', 'bought')"
BUCKET = "(ABS(r.user_id % 2147483647) + 1) * x.multiplier % 2147483647 % 10000"

COLUMNS = """r.user_id,
       r.rank,
       r.movie_id,
       m.title,
       m.genres,
       r.predicted_rating,
       r.score,
       r.model_id,
       uk.user_key,
       mk.movie_key"""
JOINS = """LEFT JOIN movies m ON m.movie_id = r.movie_id
LEFT JOIN user_keys uk ON uk.user_id = r.user_id
LEFT JOIN movie_keys mk ON mk.movie_id = r.movie_id"""

RECOMMENDED_SPLIT = f"""
CREATE VIEW recommended_movies AS
SELECT {COLUMNS}
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
{JOINS}
WHERE NOT EXISTS (SELECT 1 FROM model_splits x
                  WHERE x.ended_at IS NULL AND {BUCKET} < x.buckets
                    AND EXISTS (SELECT 1 FROM user_recommendations b WHERE b.model_id = x.model_b AND b.user_id = r.user_id))
UNION ALL
SELECT {COLUMNS}
FROM user_recommendations r
JOIN model_splits x ON x.model_b = r.model_id AND x.ended_at IS NULL
{JOINS}
WHERE {BUCKET} < x.buckets
"""

RECOMMENDED_0009 = f"""
CREATE VIEW recommended_movies AS
SELECT {COLUMNS}
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
{JOINS}
"""


def upgrade() -> None:
    create_table_unless_kept(
        "events",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), server_default=UnixNow(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("list", sa.String(length=32), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.CheckConstraint(f"kind IN {KINDS}", name=op.f("ck_events_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.Index("ix_events_user_id_movie_id_kind_at", "user_id", "movie_id", "kind", "at"),
        sa.Index(
            "ix_events_shown",
            "model_id",
            "at",
            "user_id",
            "movie_id",
            postgresql_where=sa.text("kind = 'shown'"),
            sqlite_where=sa.text("kind = 'shown'"),
        ),
        sa.Index("ix_events_at", "at"),
    )
    create_table_unless_kept(
        "model_splits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_a", sa.Integer(), nullable=False),
        sa.Column("model_b", sa.Integer(), nullable=False),
        sa.Column("buckets", sa.Integer(), nullable=False),
        sa.Column("multiplier", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_splits")),
    )
    # A split kept by a downgrade ends if the older version activated or pruned meanwhile.
    op.execute(
        "UPDATE model_splits SET ended_at = CURRENT_TIMESTAMP, ended_by = 'a downgrade: its models changed' "
        "WHERE ended_at IS NULL AND (model_a NOT IN (SELECT id FROM models WHERE status = 'active') "
        "OR model_b NOT IN (SELECT id FROM models WHERE status IN ('active', 'retired', 'ready')))"
    )
    op.execute("DROP VIEW recommended_movies")
    op.execute(RECOMMENDED_SPLIT)
    drop_orphans()


def downgrade() -> None:
    op.execute("DROP VIEW recommended_movies")
    op.execute(RECOMMENDED_0009)  # events and model_splits stay for the way back up (recsql.db.evolve)

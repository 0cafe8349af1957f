"""The rating scale, stored with the data: imports refuse ratings outside it.

A database that already holds ratings gets the range they span (what training used
to clip predictions to), so nothing already imported is refused afterwards.

Revision ID: 0007_rating_scale
Revises: 0006_list_scores
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import create_table_unless_kept, drop_orphans

revision = "0007_rating_scale"
down_revision = "0006_list_scores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table_unless_kept(
        "rating_scale",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating_scale")),
    )
    op.execute(
        "INSERT INTO rating_scale (id, low, high) "
        "SELECT 1, MIN(value), MAX(value) FROM ratings "
        "HAVING COUNT(*) > 0 AND NOT EXISTS (SELECT 1 FROM rating_scale)"
    )
    drop_orphans()


def downgrade() -> None:
    # The table stays for the way back up (recsql.db.evolve): a scale set wider than the
    # ratings is not lost.  The older recsql never reads it.
    pass

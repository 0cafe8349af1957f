"""Top-N recommendations per user, and the view that serves the active model's.

Revision ID: 0004_recommendations
Revises: 0003_biases
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import create_table_unless_kept, drop_orphans

revision = "0004_recommendations"
down_revision = "0003_biases"
branch_labels = None
depends_on = None

RECOMMENDED_MOVIES = """
CREATE VIEW recommended_movies AS
SELECT r.user_id,
       r.rank,
       r.movie_id,
       m.title,
       m.genres,
       r.predicted_rating
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = r.movie_id
"""


def upgrade() -> None:
    create_table_unless_kept(
        "user_recommendations",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("predicted_rating", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "user_id", "rank", name="pk_user_recommendations"),
    )
    op.execute(RECOMMENDED_MOVIES)
    drop_orphans()


def downgrade() -> None:
    op.execute("DROP VIEW recommended_movies")  # the table stays for the way back up (recsql.db.evolve)

"""The score that orders each stored recommendation, beside its predicted rating.

Recommendations may now be ordered by a ranking model rather than by predicted rating
(recsql.model.ranking), so the order's own score is stored and shown by the view.
Rows written before this revision were ordered by predicted rating: that is their score.

Revision ID: 0006_list_scores
Revises: 0005_popular
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import add_column_unless_kept, drop_orphans

revision = "0006_list_scores"
down_revision = "0005_popular"
branch_labels = None
depends_on = None

RECOMMENDED_MOVIES = """
CREATE VIEW recommended_movies AS
SELECT r.user_id,
       r.rank,
       r.movie_id,
       m.title,
       m.genres,
       r.predicted_rating,
       r.score
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = r.movie_id
"""

RECOMMENDED_MOVIES_0004 = """
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
    op.execute("DROP VIEW recommended_movies")
    add_column_unless_kept("user_recommendations", sa.Column("score", sa.Float(), nullable=True))
    op.execute("UPDATE user_recommendations SET score = predicted_rating WHERE score IS NULL")
    op.execute(RECOMMENDED_MOVIES)
    drop_orphans()


def downgrade() -> None:
    op.execute("DROP VIEW recommended_movies")  # the column stays for the way back up (recsql.db.evolve)
    op.execute(RECOMMENDED_MOVIES_0004)

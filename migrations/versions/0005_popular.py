"""Popular movies per run: the answer for users with no ratings at all.

Revision ID: 0005_popular
Revises: 0004_recommendations
Create Date: 2026-11-26

score is a damped mean (a Bayesian average): (prior_count * mean_of_all + sum of the
movie's ratings) / (prior_count + its number of ratings), so one 5-star rating does not
make a movie the most popular.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import create_table_unless_kept, drop_orphans

revision = "0005_popular"
down_revision = "0004_recommendations"
branch_labels = None
depends_on = None

POPULAR_MOVIES = """
CREATE VIEW popular_movies AS
SELECT p.rank,
       p.movie_id,
       m.title,
       m.genres,
       p.score,
       p.n_ratings,
       p.mean_rating
FROM movie_popularity p
JOIN models a ON a.id = p.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = p.movie_id
"""


def upgrade() -> None:
    create_table_unless_kept(
        "movie_popularity",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("n_ratings", sa.Integer(), nullable=False),
        sa.Column("mean_rating", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "rank", name="pk_movie_popularity"),
    )
    op.execute(POPULAR_MOVIES)
    drop_orphans()


def downgrade() -> None:
    op.execute("DROP VIEW popular_movies")  # the table stays for the way back up (recsql.db.evolve)

"""Views over the active model: what applications SELECT from.

Revision ID: 0002_views
Revises: 0001_tables
Create Date: 2026-11-26

Views only ever show the rows of the one run whose status is 'active', so switching
the active run (one UPDATE in one transaction) switches every view at once.
"""

from __future__ import annotations

from alembic import op

revision = "0002_views"
down_revision = "0001_tables"
branch_labels = None
depends_on = None

ACTIVE_MODEL = """
CREATE VIEW active_model AS
SELECT id AS model_id, created_at, finished_at, activated_at, algorithm, params, metrics,
       timings, n_users, n_movies, n_ratings
FROM models
WHERE status = 'active'
"""

SIMILAR_MOVIES = """
CREATE VIEW similar_movies AS
SELECT s.movie_id,
       m.title,
       s.rank,
       s.similar_movie_id,
       sm.title AS similar_title,
       sm.genres AS similar_genres,
       s.score
FROM movie_similarities s
JOIN models a ON a.id = s.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = s.movie_id
LEFT JOIN movies sm ON sm.movie_id = s.similar_movie_id
"""


def upgrade() -> None:
    op.execute(ACTIVE_MODEL)
    op.execute(SIMILAR_MOVIES)


def downgrade() -> None:
    op.execute("DROP VIEW similar_movies")
    op.execute("DROP VIEW active_model")

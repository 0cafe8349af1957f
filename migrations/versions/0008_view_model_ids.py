"""Each list view names the model version its rows come from.

An application caching answers (or checking that two reads came from one model) reads
``model_id`` beside the rows; it is appended, so queries naming columns are unchanged.

Revision ID: 0008_view_model_ids
Revises: 0007_rating_scale
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from recsql.db.evolve import drop_orphans

revision = "0008_view_model_ids"
down_revision = "0007_rating_scale"
branch_labels = None
depends_on = None

SIMILAR_MOVIES = """
CREATE VIEW similar_movies AS
SELECT s.movie_id,
       m.title,
       s.rank,
       s.similar_movie_id,
       sm.title AS similar_title,
       sm.genres AS similar_genres,
       s.score{model_id}
FROM movie_similarities s
JOIN models a ON a.id = s.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = s.movie_id
LEFT JOIN movies sm ON sm.movie_id = s.similar_movie_id
"""

RECOMMENDED_MOVIES = """
CREATE VIEW recommended_movies AS
SELECT r.user_id,
       r.rank,
       r.movie_id,
       m.title,
       m.genres,
       r.predicted_rating,
       r.score{model_id}
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = r.movie_id
"""

POPULAR_MOVIES = """
CREATE VIEW popular_movies AS
SELECT p.rank,
       p.movie_id,
       m.title,
       m.genres,
       p.score,
       p.n_ratings,
       p.mean_rating{model_id}
FROM movie_popularity p
JOIN models a ON a.id = p.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = p.movie_id
"""

VIEWS = {"similar_movies": (SIMILAR_MOVIES, "s"), "recommended_movies": (RECOMMENDED_MOVIES, "r"),
         "popular_movies": (POPULAR_MOVIES, "p")}


def _recreate(with_model_id: bool) -> None:
    for name, (sql, alias) in VIEWS.items():
        op.execute(f"DROP VIEW {name}")
        op.execute(sql.format(model_id=f",\n       {alias}.model_id" if with_model_id else ""))


def upgrade() -> None:
    _recreate(with_model_id=True)
    drop_orphans()


def downgrade() -> None:
    _recreate(with_model_id=False)

"""Application ids of any type: text or UUID user and movie ids mapped to integers.

Revision ID: 0009_id_keys
Revises: 0008_view_model_ids
Create Date: 2026-11-27

``user_keys`` and ``movie_keys`` map an application's own ids to the integers recsql
trains and stores under (catalogues with integer ids leave them empty).  The list views
gain the keys as their last columns, NULL for integer catalogues.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recsql.db.evolve import create_table_unless_kept, drop_orphans

revision = "0009_id_keys"
down_revision = "0008_view_model_ids"
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
       s.score,
       s.model_id{keys}
FROM movie_similarities s
JOIN models a ON a.id = s.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = s.movie_id
LEFT JOIN movies sm ON sm.movie_id = s.similar_movie_id{joins}
"""
SIMILAR_KEYS = (",\n       mk.movie_key,\n       smk.movie_key AS similar_movie_key",
                "\nLEFT JOIN movie_keys mk ON mk.movie_id = s.movie_id"
                "\nLEFT JOIN movie_keys smk ON smk.movie_id = s.similar_movie_id")

RECOMMENDED_MOVIES = """
CREATE VIEW recommended_movies AS
SELECT r.user_id,
       r.rank,
       r.movie_id,
       m.title,
       m.genres,
       r.predicted_rating,
       r.score,
       r.model_id{keys}
FROM user_recommendations r
JOIN models a ON a.id = r.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = r.movie_id{joins}
"""
RECOMMENDED_KEYS = (",\n       uk.user_key,\n       mk.movie_key",
                    "\nLEFT JOIN user_keys uk ON uk.user_id = r.user_id"
                    "\nLEFT JOIN movie_keys mk ON mk.movie_id = r.movie_id")

POPULAR_MOVIES = """
CREATE VIEW popular_movies AS
SELECT p.rank,
       p.movie_id,
       m.title,
       m.genres,
       p.score,
       p.n_ratings,
       p.mean_rating,
       p.model_id{keys}
FROM movie_popularity p
JOIN models a ON a.id = p.model_id AND a.status = 'active'
LEFT JOIN movies m ON m.movie_id = p.movie_id{joins}
"""
POPULAR_KEYS = (",\n       mk.movie_key", "\nLEFT JOIN movie_keys mk ON mk.movie_id = p.movie_id")

VIEWS = {"similar_movies": (SIMILAR_MOVIES, SIMILAR_KEYS), "recommended_movies": (RECOMMENDED_MOVIES, RECOMMENDED_KEYS),
         "popular_movies": (POPULAR_MOVIES, POPULAR_KEYS)}


def _recreate(with_keys: bool) -> None:
    for name, (sql, (keys, joins)) in VIEWS.items():
        op.execute(f"DROP VIEW {name}")
        op.execute(sql.format(keys=keys, joins=joins) if with_keys else sql.format(keys="", joins=""))


def upgrade() -> None:
    for table, id_column, key_column in (("user_keys", "user_id", "user_key"), ("movie_keys", "movie_id", "movie_key")):
        create_table_unless_kept(
            table,
            sa.Column(id_column, sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column(key_column, sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint(id_column, name=op.f(f"pk_{table}")),
            sa.UniqueConstraint(key_column, name=op.f(f"uq_{table}_{key_column}")),
        )
    _recreate(with_keys=True)
    drop_orphans()


def downgrade() -> None:
    _recreate(with_keys=False)  # the key tables stay for the way back up (recsql.db.evolve)

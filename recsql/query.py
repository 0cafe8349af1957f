"""The read side: what the CLI and Python callers ask of a trained database.

Reads go through the SQL views (``similar_movies``, ``active_model``) wherever one
exists, so Python callers see exactly what SQL readers see.  Results are frozen
dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from recsql.models import Movie, ModelRun


@dataclass(frozen=True)
class MovieInfo:
    movie_id: int
    title: str | None
    genres: str | None


@dataclass(frozen=True)
class SimilarMovie:
    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    score: float


@dataclass(frozen=True)
class ModelInfo:
    id: int
    status: str
    algorithm: str
    created_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    timings: dict[str, Any] | None
    n_users: int | None
    n_movies: int | None
    n_ratings: int | None
    error: str | None


def movie(engine: Engine, movie_id: int) -> MovieInfo:
    """The catalogue entry of a movie (title and genres may be unknown: None)."""
    with engine.connect() as conn:
        row = conn.execute(select(Movie.__table__).where(Movie.movie_id == movie_id)).first()
    if row is None:
        return MovieInfo(movie_id, None, None)
    return MovieInfo(row.movie_id, row.title, row.genres)


def similar(engine: Engine, movie_id: int, limit: int = 5) -> list[SimilarMovie]:
    """The ``limit`` movies most similar to ``movie_id`` in the active model, best first."""
    from recsql.recommender import Recommender

    return Recommender(engine).similar(movie_id, limit)


def list_models(engine: Engine) -> list[ModelInfo]:
    """Every training run, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(ModelRun.__table__).order_by(ModelRun.id.desc())).all()
    fields = ModelInfo.__dataclass_fields__
    return [ModelInfo(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]

"""The read side: what the CLI and Python callers ask of a trained database.

Reads go through the SQL views (``similar_movies``, ``active_model``) wherever one
exists, so Python callers see exactly what SQL readers see.  Results are frozen
dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from recsql.errors import NoActiveModel, UnknownMovie
from recsql.models import ACTIVE, Movie, MovieFeature, ModelRun


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


def active_model_id(conn: Connection) -> int:
    model_id = conn.execute(select(ModelRun.id).where(ModelRun.status == ACTIVE)).scalar()
    if model_id is None:
        raise NoActiveModel("no model has been trained yet; run `recsql train`")
    return model_id


def movie(engine: Engine, movie_id: int) -> MovieInfo:
    """The catalogue entry of a movie (title and genres may be unknown: None)."""
    with engine.connect() as conn:
        row = conn.execute(select(Movie.__table__).where(Movie.movie_id == movie_id)).first()
    if row is None:
        return MovieInfo(movie_id, None, None)
    return MovieInfo(row.movie_id, row.title, row.genres)


SIMILAR_SQL = text(
    "SELECT rank, similar_movie_id, similar_title, similar_genres, score "
    "FROM similar_movies WHERE movie_id = :movie_id ORDER BY rank LIMIT :limit"
)


def similar(engine: Engine, movie_id: int, limit: int = 5) -> list[SimilarMovie]:
    """The ``limit`` movies most similar to ``movie_id`` in the active model, best first."""
    with engine.connect() as conn:
        model_id = active_model_id(conn)
        rows = conn.execute(SIMILAR_SQL, {"movie_id": movie_id, "limit": limit}).all()
        if not rows:
            known = conn.execute(
                select(MovieFeature.movie_id)
                .where(MovieFeature.model_id == model_id, MovieFeature.movie_id == movie_id)
                .limit(1)
            ).first()
            if known is None:
                raise UnknownMovie(movie_id, f"has no ratings in the active model ({model_id})")
    return [SimilarMovie(r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score) for r in rows]


def list_models(engine: Engine) -> list[ModelInfo]:
    """Every training run, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(ModelRun.__table__).order_by(ModelRun.id.desc())).all()
    fields = ModelInfo.__dataclass_fields__
    return [ModelInfo(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]

"""What an admin asks of a stored model (``recsql inspect``): one movie, one user, or
the model itself, for any version, active or not.

Everything here reads what a retrain stored (feature and bias rows, lists, the run's
record) plus the ratings it read; nothing is recomputed except the explanations of a
user's recommendations, which fold the user's ratings through the model's movie
factors exactly as :meth:`recsql.serving.Recommender.explain` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, Engine

from recsql import store
from recsql.algorithms.foldin import fold_in
from recsql.data.matrix import lookup_ids
from recsql.db.facts import table_bytes
from recsql.errors import UnknownMovie, UnknownUser
from recsql.serving.admin import AdminReader
from recsql.store import read


@dataclass(frozen=True)
class Neighbour:
    """One movie on another's stored similar-movies list."""

    rank: int
    movie_id: int
    title: str | None
    score: float


@dataclass(frozen=True)
class MovieInspection:
    """A movie as a model sees it.  ``n_ratings`` and ``mean_rating`` count the ratings
    where the model read them (recsql's ``ratings`` or the application's tables), every
    row, repeated ones included."""

    model_id: int
    movie_id: int
    title: str | None
    genres: str | None
    n_ratings: int
    mean_rating: float | None  # None: no ratings
    bias: float
    features: list[float]
    similar: list[Neighbour]
    recommended_to: int  # users with the movie on their stored list


@dataclass(frozen=True)
class RatedMovie:
    movie_id: int
    title: str | None
    rating: float


@dataclass(frozen=True)
class Because:
    """One of the user's ratings and how much it pushed a recommendation's score."""

    movie_id: int
    title: str | None
    rating: float
    contribution: float


@dataclass(frozen=True)
class ExplainedRecommendation:
    rank: int
    movie_id: int
    title: str | None
    predicted_rating: float | None
    score: float | None
    because: list[Because] = field(default_factory=list)


@dataclass(frozen=True)
class UserInspection:
    """A user as a model sees them: their ratings, bias and features, and their stored
    recommendations, each with the rated movies that contributed most to it."""

    model_id: int
    user_id: int
    bias: float
    features: list[float]
    ratings: list[RatedMovie]
    recommendations: list[ExplainedRecommendation]


@dataclass(frozen=True)
class TableSize:
    """A model's rows in one output table.  ``table_bytes`` is the whole table on disk
    (every version, indexes included; None where the database cannot say);
    ``model_bytes`` the model's share of it, by rows."""

    table: str
    rows: int
    table_rows: int
    table_bytes: int | None
    model_bytes: int | None


@dataclass(frozen=True)
class ModelInspection:
    """A model version's record and what it stores."""

    model: store.ModelInfo
    tables: list[TableSize]

    @property
    def model_bytes(self) -> int | None:
        sizes = [t.model_bytes for t in self.tables]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


def inspect_movie(
    engine: Engine, movie_id: int | str, *, model_id: int | None = None, limit: int = 10
) -> MovieInspection:
    """Movie ``movie_id`` (recsql's id or the application's key) in model ``model_id``
    (default: the active one), with its ``limit`` most similar movies."""
    with engine.connect() as conn:
        model = store.complete_model(conn, _id(conn, model_id), "inspected")
    with AdminReader(engine) as admin:
        movie = admin.movie(movie_id)
        ratings = admin.movie_ratings(movie.movie_id, model.model_id)
    with engine.connect() as conn:
        stored = read.stored_movie(conn, model.model_id, movie.movie_id, limit)
    if stored is None:
        raise UnknownMovie(movie_id, f"is not in model {model.model_id}")
    return MovieInspection(
        model_id=model.model_id,
        movie_id=movie.movie_id,
        title=movie.title,
        genres=movie.genres,
        n_ratings=len(ratings),
        mean_rating=float(np.mean(ratings)) if ratings else None,
        bias=float(stored.bias or 0.0),
        features=stored.features,
        similar=[Neighbour(r.rank, r.similar_movie_id, r.title, float(r.score)) for r in stored.similar],
        recommended_to=stored.recommended_to,
    )


def inspect_user(
    engine: Engine, user_id: int | str, *, model_id: int | None = None, because: int = 3
) -> UserInspection:
    """User ``user_id`` (recsql's id or the application's key) in model ``model_id``
    (default: the active one): ratings, bias, features, and each stored recommendation
    with the ``because`` rated movies that contributed most to it."""
    with AdminReader(engine) as admin:
        user = admin.user_id(user_id)
    with engine.connect() as conn:
        model = store.complete_model(conn, _id(conn, model_id), "inspected")
        found = store.load_user(conn, model.model_id, user)
        if found is None:
            raise UnknownUser(user_id, f"has no ratings in model {model.model_id}")
        vector, bias = found
        listed = read.user_recommendations(conn, model.model_id, user)
        movies = store.load_movie_factors(conn, model)
    with AdminReader(engine) as admin:
        rated = admin.user_ratings(user, model.model_id)
        titles = admin.titles([*rated, *(r.movie_id for r in listed)])
    title = {movie: info.title for movie, info in titles.items()}
    ratings = [
        RatedMovie(movie, title.get(movie), value)
        for movie, value in sorted(rated.items(), key=lambda pair: (-pair[1], pair[0]))
    ]
    ids = np.array(list(rated), dtype=np.int64)
    rows, known = lookup_ids(movies.movie_ids, ids)
    ids = ids[known]  # the rated movies the model knows: those that can explain anything
    folded = fold_in(movies, rows[known], np.array([rated[i] for i in ids])) if len(ids) else None
    targets, in_model = lookup_ids(movies.movie_ids, np.array([r.movie_id for r in listed], dtype=np.int64))
    recommendations = []
    for row, target, known_target in zip(listed, targets, in_model):
        reasons: list[Because] = []
        if folded is not None and known_target and because > 0:
            share = folded.contributions(movies.movie_factors[target])
            reasons = [
                Because(int(ids[i]), title.get(int(ids[i])), rated[int(ids[i])], float(share[i]))
                for i in np.argsort(-share, kind="stable")[:because]
            ]
        recommendations.append(
            ExplainedRecommendation(
                row.rank, row.movie_id, title.get(row.movie_id), row.predicted_rating, row.score, reasons
            )
        )
    return UserInspection(model.model_id, user, float(bias), [float(v) for v in vector], ratings, recommendations)


def inspect_model(engine: Engine, model_id: int | None = None) -> ModelInspection:
    """Model ``model_id`` (default: the active one): its record, and its rows and bytes
    in every output table."""
    with engine.connect() as conn:
        model = store.get_model(conn, _id(conn, model_id))
        tables = []
        for table in store.OUTPUT_TABLES:
            rows, total = read.table_rows(conn, table, model.model_id)
            size = table_bytes(conn, table)
            share = None if size is None else (round(size * rows / total) if total else 0)
            tables.append(TableSize(table, rows, total, size, share))
    return ModelInspection(model, tables)


def _id(conn: Connection, model_id: int | None) -> int:
    return store.active_model_id(conn) if model_id is None else model_id

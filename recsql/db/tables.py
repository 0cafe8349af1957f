"""The schema: every table recsql owns, defined once (SQLAlchemy 2 typed models).

Migrations (``migrations/versions``) create exactly these tables; a test compares the
two so they cannot drift.  The ORM classes are for the schema and for small queries
(the ``models`` table of model versions); bulk paths (ratings, features, similarities)
go through :mod:`recsql.db.bulk` with Core statements or the driver's COPY.

Identifiers (user, movie) are the application's own integer ids, never re-numbered:
a SQL reader joins these tables to its own without a mapping table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# Named constraints let Alembic's batch mode (SQLite) alter tables later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# On SQLite only INTEGER PRIMARY KEY aliases the rowid (and autoincrements).
RowId = BigInteger().with_variant(Integer(), "sqlite")

# Status of a model version.  Exactly one is ACTIVE once any training run has finished.
RUNNING = "running"
READY = "ready"
ACTIVE = "active"
RETIRED = "retired"
FAILED = "failed"
PRUNING = "pruning"  # prune is deleting its output rows; it can no longer be activated
PRUNED = "pruned"  # its output rows were deleted by prune; the row stays as history


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Movie(Base):
    """The catalogue: what a movie id means to a person."""

    __tablename__ = "movies"

    movie_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(Text)
    genres: Mapped[str | None] = mapped_column(Text)


class Rating(Base):
    """One rating as imported.  Duplicated (user, movie) pairs are kept; training resolves them."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    # Unix seconds (UTC), as MovieLens ships them: integers load in bulk far faster than
    # timestamps and compare the same way.  NULL when the source has no time.
    rated_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "user_id", "movie_id"),)


class RatingScale(Base):
    """The catalogue's rating scale: imports refuse ratings outside it and predictions are
    clipped to it.  One row, set by ``--rating-scale`` or taken from the first import."""

    __tablename__ = "rating_scale"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)


class UserKey(Base):
    """An application's own user id (text, a UUID...) and the integer recsql uses for it.

    Catalogues with integer ids have no rows here; one imported with ``--ids text`` maps
    every key once, at import, so training and the stored lists run on integers and the
    views join the keys back (one indexed lookup)."""

    __tablename__ = "user_keys"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_key: Mapped[str] = mapped_column(Text, unique=True)


class MovieKey(Base):
    """An application's own movie id and the integer recsql uses for it (see UserKey)."""

    __tablename__ = "movie_keys"

    movie_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    movie_key: Mapped[str] = mapped_column(Text, unique=True)


class Model(Base):
    """One model version (one training run); its ``id`` is the ``model_id`` of every
    output row it wrote (features, biases, similarities, recommendations, popularity)."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    n_users: Mapped[int | None] = mapped_column(Integer)
    n_movies: Mapped[int | None] = mapped_column(Integer)
    n_ratings: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    # prediction = global_mean + user bias + movie bias + features, clipped to the range
    global_mean: Mapped[float | None] = mapped_column(Float)
    rating_min: Mapped[float | None] = mapped_column(Float)
    rating_max: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        # At most one active run, enforced by the database itself.
        Index(
            "uq_models_one_active",
            "status",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )


def _model_fk() -> Any:
    """The model version a row belongs to.  Deliberately not a FOREIGN KEY: both
    databases check a foreign key row by row, which made writing a 25-million-rating
    model's outputs several times slower; the one code path that writes these rows
    (recsql.store) takes the id from the model row it has just created."""
    return Integer()


class UserFeature(Base):
    """Long format: one row per (user, feature index); ``feature`` counts from 0."""

    __tablename__ = "user_features"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    feature: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class MovieFeature(Base):
    """Long format: one row per (movie, feature index); ``feature`` counts from 0."""

    __tablename__ = "movie_features"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    movie_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    feature: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class UserBias(Base):
    """A user's rating offset; 0 for solvers without biases (the tutorial's)."""

    __tablename__ = "user_biases"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bias: Mapped[float] = mapped_column(Float)


class MovieBias(Base):
    """A movie's rating offset; 0 for solvers without biases (the tutorial's)."""

    __tablename__ = "movie_biases"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    movie_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bias: Mapped[float] = mapped_column(Float)


class MovieSimilarity(Base):
    """Top-K most similar other movies per movie; rank 1 is the most similar."""

    __tablename__ = "movie_similarities"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    movie_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    similar_movie_id: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)


class UserRecommendation(Base):
    """Top-N movies a user has not rated, ordered by ``score`` (rank 1 is the best):
    the ranking model's score, or the predicted rating when lists rank by it."""

    __tablename__ = "user_recommendations"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    predicted_rating: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)


class MoviePopularity(Base):
    """The most popular well-rated movies of a model version, by damped mean; for brand-new users."""

    __tablename__ = "movie_popularity"

    model_id: Mapped[int] = mapped_column(_model_fk(), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)
    n_ratings: Mapped[int] = mapped_column(Integer)
    mean_rating: Mapped[float] = mapped_column(Float)


class WriterLockTable(Base):
    """Holds no rows: a retrain, activation or prune holds an EXCLUSIVE lock on it for
    its duration (:mod:`recsql.db.lock`), which needs rights a reader role lacks."""

    __tablename__ = "recsql_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class UnixNow(FunctionElement[int]):
    """The current time in Unix seconds, as each database computes it: the default of
    ``events.at``, so an application's plain ``INSERT`` needs no time."""

    type = BigInteger()
    inherit_cache = True
    name = "unix_now"


@compiles(UnixNow, "postgresql")
def _unix_now_postgresql(element: UnixNow, compiler: SQLCompiler | DDLCompiler, **kw: Any) -> str:
    return "(CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))"


@compiles(UnixNow)
def _unix_now_sqlite(element: UnixNow, compiler: SQLCompiler | DDLCompiler, **kw: Any) -> str:
    return "(CAST(strftime('%s', 'now') AS INTEGER))"


# What applications log (recsql.events): a movie shown in a list, and what the user did.
SHOWN = "shown"
EVENT_KINDS = (SHOWN, "clicked", "watched", "rated", "bought")


class Event(Base):
    """One thing an application saw a user do, appended by its own ``INSERT`` or by
    :func:`recsql.log_events`: a movie ``shown`` to the user (by model ``model_id``, in
    ``list`` at ``rank``), or the user ``clicked``, ``watched``, ``rated`` (``value``) or
    ``bought`` it.  Append-only; ``recsql events prune`` bounds its growth.  Ids are
    recsql's integers, as the views give them."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigInteger)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    # Unix seconds (UTC), like ratings.rated_at; the database's clock when not given.
    at: Mapped[int] = mapped_column(BigInteger, server_default=UnixNow())
    model_id: Mapped[int | None] = mapped_column(Integer)
    list: Mapped[str | None] = mapped_column(String(32))
    rank: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in EVENT_KINDS)})", name="kind"),
        # what a user did to a movie after it was shown (the online metrics' probes)
        Index(None, "user_id", "movie_id", "kind", "at"),
        # a model's impressions over a period, read from the index alone
        Index(
            "ix_events_shown",
            "model_id",
            "at",
            "user_id",
            "movie_id",
            postgresql_where=text("kind = 'shown'"),
            sqlite_where=text("kind = 'shown'"),
        ),
        # pruning by age
        Index(None, "at"),
    )


class ModelSplit(Base):
    """A traffic split: while ``ended_at`` is NULL, users whose bucket (their id hashed with
    ``multiplier``, :mod:`recsql.store.split`) falls below ``buckets`` of 10,000 are served
    model ``model_b``'s recommendations by the views, the others the active model ``model_a``'s.
    At most one runs at a time (the writer lock); activating any model ends it.  Ended
    splits stay, as the history the online metrics read."""

    __tablename__ = "model_splits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_a: Mapped[int] = mapped_column(Integer)
    model_b: Mapped[int] = mapped_column(Integer)
    buckets: Mapped[int] = mapped_column(Integer)
    multiplier: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(Text)


RECSQL_TABLES = tuple(Base.metadata.tables)
RECSQL_VIEWS = ("active_model", "similar_movies", "recommended_movies", "popular_movies")

"""The Python API: one function per thing a user does.  The CLI calls exactly these.

    import recsql
    engine = recsql.connect("postgresql://app@db/shop")
    recsql.import_ratings(engine, "ratings.csv")
    result = recsql.train(engine, features=15, regularization=0.1)
    recsql.similar(engine, movie_id=3, limit=5)
"""

from __future__ import annotations

from sqlalchemy import Engine

from recsql import schema
from recsql.db import make_engine
from recsql.experiment import Evaluation, TuneRow, evaluate, plot_tuning, tune
from recsql.generate import GenerateResult, generate
from recsql.ingest import ImportResult, import_movies, import_ratings
from recsql.pipeline import TrainResult, train
from recsql.query import ModelInfo, MovieInfo, SimilarMovie, list_models, movie, similar


def connect(url: str | None = None, *, check_schema: bool = True) -> Engine:
    """An engine for ``url`` (else ``$RECSQL_DATABASE_URL``, else ``sqlite:///recsql.db``).

    A database without recsql's tables is set up; one at an older schema revision is
    refused with the command that upgrades it (:class:`~recsql.errors.SchemaOutOfDate`).
    ``check_schema=False`` skips that (for ``recsql db`` commands themselves).
    """
    engine = make_engine(url)
    if check_schema:
        schema.ensure_current(engine)
    return engine


def upgrade(url: str | None = None, revision: str = "head") -> str | None:
    """Migrate the database to ``revision``; returns the revision reached."""
    engine = connect(url, check_schema=False)
    try:
        return schema.upgrade(engine, revision)
    finally:
        engine.dispose()


def downgrade(url: str | None = None, revision: str = "base") -> str | None:
    """Migrate down; ``base`` removes every table and view recsql created, nothing else."""
    engine = connect(url, check_schema=False)
    try:
        return schema.downgrade(engine, revision)
    finally:
        engine.dispose()


def schema_status(url: str | None = None) -> tuple[str | None, str]:
    """(current revision, newest revision) of the database's recsql schema."""
    engine = connect(url, check_schema=False)
    try:
        with engine.connect() as conn:
            return schema.current_revision(conn), schema.head_revision()
    finally:
        engine.dispose()


__all__ = [
    "connect", "upgrade", "downgrade", "schema_status",
    "import_ratings", "import_movies", "ImportResult", "generate", "GenerateResult",
    "train", "TrainResult", "evaluate", "Evaluation", "tune", "TuneRow", "plot_tuning",
    "similar", "movie", "list_models", "SimilarMovie", "MovieInfo", "ModelInfo",
]

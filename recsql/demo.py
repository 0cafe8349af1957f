"""``recsql demo``: load a small synthetic catalogue (:func:`recsql.data.synthetic.demo_catalogue`)
into an empty database, train, and show the movies most similar to a western."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recsql.data.imports import load_catalogue
from recsql.data.synthetic import demo_catalogue
from recsql.db.catalogue import count_ratings
from recsql.db.engine import URL_ENV, redact
from recsql.db.migrate import connect
from recsql.errors import RecsqlError
from recsql.serving import MovieInfo, Recommender, SimilarMovie
from recsql.train import TrainResult, train

DEMO_FILE = "recsql-demo.db"


@dataclass(frozen=True)
class DemoResult:
    database_url: str
    result: TrainResult
    movie: MovieInfo
    similar: list[SimilarMovie]


def run_demo(database_url: str | None = None, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Load the synthetic catalogue into an empty database, train, and find similar movies.

    Without a URL (and without ``$RECSQL_DATABASE_URL``) the demo uses its own SQLite
    file, ``recsql-demo.db`` in the current folder, made afresh each time.  It never
    writes into a database that already holds ratings.
    """
    say = progress or (lambda _msg: None)
    url = database_url or os.environ.get(URL_ENV)
    if url is None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(DEMO_FILE + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{DEMO_FILE}"
    engine = connect(url)
    try:
        with engine.connect() as conn:
            existing = count_ratings(conn)
        if existing:
            raise RecsqlError(
                f"the demo only runs on an empty database, and {redact(url)} holds {existing} "
                f"ratings; run it without --database-url to use {DEMO_FILE}"
            )
        catalogue = demo_catalogue()
        with engine.begin() as conn:
            load_catalogue(conn, catalogue)
        say(
            f"Loaded {len(catalogue.ratings)} ratings of {len(catalogue.movies)} movies "
            f"by {catalogue.ratings.user_id.nunique()} synthetic users into {redact(url)}"
        )
        result = train(engine, test_fraction=0.2, seed=0)
        first = int(catalogue.movies.movie_id.iloc[0])
        rec = Recommender(engine)
        return DemoResult(redact(url), result, rec.movie(first), rec.similar(first, limit=5))
    finally:
        engine.dispose()

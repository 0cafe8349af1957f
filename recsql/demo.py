"""A small synthetic catalogue, generated here, so `recsql demo` needs no files.

Movies belong to genres; each simulated user likes one or two genres and rates mostly
movies of those, higher when the genre fits.  The factorization has to discover the
genres from ratings alone, so "similar movies" of a western should come out westerns:
that is what the demo shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from recsql import db, pipeline
from recsql.api import connect
from recsql.errors import RecsqlError
from recsql.models import Movie, Rating
from recsql.query import SimilarMovie, similar

DEMO_FILE = "recsql-demo.db"

# genre: (title patterns, words); "{}" takes a word.
GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "western": (("The Sheriff of {}", "Showdown at {}", "Last Ride to {}"),
                ("Dry Creek", "Red Canyon", "Dust Valley", "Silver Gulch")),
    "sci-fi": (("Beyond {}", "The {} Protocol", "Escape from {}"),
               ("Orion", "the Ninth Moon", "Titan Station", "Nebula")),
    "romance": (("Love in {}", "A Summer in {}", "Letters from {}"),
                ("Paris", "Verona", "the Lake House", "Lisbon")),
    "horror": (("The Curse of {}", "Night at {}", "Return to {}"),
               ("Blackwood", "Hollow Hill", "the Asylum", "Crow Manor")),
    "comedy": (("My Neighbour from {}", "Weekend in {}", "Trouble in {}"),
               ("Ohio", "Vegas", "the Suburbs", "Accounting")),
}


@dataclass(frozen=True)
class Catalogue:
    movies: pd.DataFrame  # movie_id, title, genres
    ratings: pd.DataFrame  # user_id, movie_id, value


def synthetic_catalogue(n_users: int = 600, ratings_per_user: int = 25, seed: int = 7) -> Catalogue:
    """Movies with genres and integer 1-5 ratings from users with genre tastes."""
    rng = np.random.default_rng(seed)
    titles, genres = [], []
    for genre, (patterns, words) in GENRES.items():
        for pattern in patterns:
            for word in words:
                titles.append(pattern.format(word))
                genres.append(genre)
    n_movies, n_genres = len(titles), len(GENRES)
    genre_of = np.repeat(np.arange(n_genres), len(titles) // n_genres)
    quality = rng.normal(0.0, 0.4, n_movies)
    # Each user loves one genre, likes a second a little, is indifferent or averse to the rest.
    taste = rng.normal(-0.6, 0.4, (n_users, n_genres))
    favourite = rng.integers(0, n_genres, n_users)
    second = (favourite + rng.integers(1, n_genres, n_users)) % n_genres
    taste[np.arange(n_users), favourite] = rng.normal(1.4, 0.3, n_users)
    taste[np.arange(n_users), second] = rng.normal(0.5, 0.3, n_users)
    # Users mostly watch what they like: sampling weight grows with taste.
    weight = np.exp(1.5 * taste[:, genre_of])
    weight /= weight.sum(axis=1, keepdims=True)
    keys = rng.random((n_users, n_movies)) ** (1.0 / weight)  # weighted sampling without replacement
    chosen = np.argsort(-keys, axis=1)[:, :ratings_per_user]
    users = np.repeat(np.arange(n_users), ratings_per_user)
    movies = chosen.ravel()
    raw = 3.2 + 1.2 * taste[users, genre_of[movies]] + quality[movies] + rng.normal(0, 0.5, users.size)
    values = np.clip(np.rint(raw), 1, 5)
    return Catalogue(
        movies=pd.DataFrame({"movie_id": np.arange(1, n_movies + 1), "title": titles, "genres": genres}),
        ratings=pd.DataFrame({"user_id": users + 1, "movie_id": movies + 1, "value": values}),
    )


@dataclass(frozen=True)
class DemoResult:
    database_url: str
    result: pipeline.TrainResult
    movie_id: int
    title: str
    genres: str
    similar: list[SimilarMovie]


def run_demo(database_url: str | None = None, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Load the synthetic catalogue into an empty database, train, and find similar movies.

    Without a URL (and without ``$RECSQL_DATABASE_URL``) the demo uses its own SQLite
    file, ``recsql-demo.db`` in the current folder, made afresh each time.  It never
    writes into a database that already holds ratings.
    """
    say = progress or (lambda _msg: None)
    url = database_url or os.environ.get(db.URL_ENV)
    if url is None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(DEMO_FILE + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{DEMO_FILE}"
    engine = connect(url)
    with engine.connect() as conn:
        existing = conn.execute(select(func.count()).select_from(Rating)).scalar_one()
    if existing:
        raise RecsqlError(
            f"the demo only runs on an empty database, and {db.redact(url)} holds {existing} "
            f"ratings; run it without --database-url to use {DEMO_FILE}"
        )
    catalogue = synthetic_catalogue()
    with engine.begin() as conn:
        db.upsert_columns(conn, Movie.__tablename__, "movie_id", {c: catalogue.movies[c].to_numpy(dtype=object) for c in catalogue.movies})
        db.insert_columns(conn, Rating.__tablename__, {c: catalogue.ratings[c].to_numpy() for c in catalogue.ratings})
    say(
        f"Loaded {len(catalogue.ratings)} ratings of {len(catalogue.movies)} movies "
        f"by {catalogue.ratings.user_id.nunique()} synthetic users into {db.redact(url)}"
    )
    result = pipeline.train(engine, test_fraction=0.2, seed=0)
    first = catalogue.movies.iloc[0]
    return DemoResult(
        database_url=db.redact(url),
        result=result,
        movie_id=int(first.movie_id),
        title=str(first.title),
        genres=str(first.genres),
        similar=similar(engine, int(first.movie_id), limit=5),
    )

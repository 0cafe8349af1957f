"""A realistic synthetic catalogue of any size, for benchmarks and load tests.

Shape of real rating data, reproduced on purpose:

* popularity is skewed: movie m's draw weight falls as a power of its rank (a few
  blockbusters, a long tail), and so does user activity (a few heavy raters);
* ratings come from a hidden low-rank taste model plus user and movie biases and
  noise, rounded to a 0.5-5 half-star scale, so factorization has something to find;
* each movie's genre is its strongest hidden taste dimension, so "similar movies" can be
  checked by eye; titles are built from genre words.

Everything is vectorized: 25 million ratings are drawn in a few seconds.  No
(user, movie) pair repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsql.errors import InvalidParameter

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Documentary", "Western")
WORDS = {
    "Action": ("Strike", "Fury", "Velocity", "Siege"), "Comedy": ("Mixup", "Weekend", "Neighbours", "Oops"),
    "Drama": ("Letters", "Harbour", "Winter", "Silence"), "Horror": ("Hollow", "Crypt", "Whisper", "Dread"),
    "Romance": ("Promise", "Summer", "Postcard", "Waltz"), "Sci-Fi": ("Orbit", "Nebula", "Signal", "Drift"),
    "Documentary": ("Rivers", "Makers", "Machines", "Islands"), "Western": ("Canyon", "Outlaw", "Saddle", "Frontier"),
}
RANK = len(GENRES)


@dataclass(frozen=True)
class SyntheticRatings:
    movies: pd.DataFrame  # movie_id, title, genres
    user_id: np.ndarray
    movie_id: np.ndarray
    value: np.ndarray
    rated_at: np.ndarray


def synthetic_ratings(ratings: int, users: int, movies: int, seed: int = 0) -> SyntheticRatings:
    """``ratings`` distinct (user, movie) ratings of ``movies`` movies by ``users`` users."""
    if min(ratings, users, movies) < 1:
        raise InvalidParameter("ratings, users and movies must all be at least 1")
    if ratings > 0.5 * users * movies:
        raise InvalidParameter(
            f"{ratings} ratings would fill more than half of the {users} x {movies} matrix; "
            "ask for fewer ratings or more users/movies"
        )
    rng = np.random.default_rng(seed)
    # Hidden tastes: a movie leans to one genre; users like some genres, dislike others.
    genre = rng.integers(0, RANK, movies)
    movie_taste = rng.normal(0, 0.25, (movies, RANK)).astype(np.float32)
    movie_taste[np.arange(movies), genre] += 1.0
    user_taste = rng.normal(0, 0.45, (users, RANK)).astype(np.float32)
    movie_bias = rng.normal(0, 0.45, movies).astype(np.float32)
    user_bias = rng.normal(0, 0.35, users).astype(np.float32)
    # Skewed popularity and activity: power-law weights over a random ranking.
    movie_weight = 1.0 / np.arange(1, movies + 1) ** 0.9
    user_weight = 1.0 / np.arange(1, users + 1) ** 0.6
    movie_weight = movie_weight[rng.permutation(movies)] / movie_weight.sum()
    user_weight = user_weight[rng.permutation(users)] / user_weight.sum()
    # Better movies are watched more.
    movie_bias += (0.3 * np.log(movie_weight * movies)).astype(np.float32).clip(-0.6, 0.6)

    keys = np.empty(0, dtype=np.int64)
    while len(keys) < ratings:
        need = int((ratings - len(keys)) * 1.5) + 1000
        u = _draw(rng, user_weight, need)
        m = _draw(rng, movie_weight, need)
        keys = np.concatenate([keys, u.astype(np.int64) * movies + m])
        keys.sort()
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # drop repeated pairs
    keys = rng.permutation(keys)[:ratings]
    keys.sort()  # by user, then movie: the order the database will store them in
    u, m = (keys // movies).astype(np.int64), (keys % movies).astype(np.int64)
    raw = 3.5 + user_bias[u] + movie_bias[m] + np.einsum("ij,ij->i", user_taste[u], movie_taste[m])
    raw += rng.normal(0, 0.7, ratings).astype(np.float32)
    value = np.clip(np.round(raw * 2) / 2, 0.5, 5.0).astype(np.float64)
    start = 1_420_070_400  # 2015-01-01
    rated_at = start + rng.integers(0, 10 * 365 * 86400, ratings)
    names = np.array(GENRES)[genre]
    words = np.array([WORDS[g][i % 4] for i, g in enumerate(names)])
    titles = pd.Series(words).str.cat(
        [pd.Series(np.arange(1, movies + 1).astype(str))], sep=" "
    ).radd("The ")
    return SyntheticRatings(
        movies=pd.DataFrame({"movie_id": np.arange(1, movies + 1), "title": titles.to_numpy(), "genres": names}),
        user_id=u + 1,
        movie_id=m + 1,
        value=value,
        rated_at=rated_at,
    )


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with the given probabilities (inverse CDF: O(n log len))."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n)), len(weights) - 1)


@dataclass(frozen=True)
class GenerateResult:
    ratings: int
    users: int
    movies: int
    seconds: dict[str, float]


def generate(
    engine,
    *,
    ratings: int,
    users: int,
    movies: int,
    seed: int = 0,
    replace: bool = False,
) -> GenerateResult:
    """Fill the database with a synthetic catalogue (movies and ratings), in one transaction.

    Refuses a database that already holds ratings unless ``replace`` (which deletes them
    first, in the same transaction).  On a bulk load the ratings index is dropped and
    rebuilt after the rows are in, which is faster than maintaining it row by row.
    """
    import time

    from sqlalchemy import delete, func, select

    from recsql import db
    from recsql.models import Movie, Rating

    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = synthetic_ratings(ratings, users, movies, seed)
    timings["generate"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    with engine.begin() as conn:
        existing = conn.execute(select(func.count()).select_from(Rating)).scalar_one()
        if existing and not replace:
            raise InvalidParameter(
                f"the database already holds {existing} ratings; use --replace to swap them for generated ones"
            )
        if existing:
            conn.execute(delete(Rating))
        db.upsert_columns(
            conn, Movie.__tablename__, "movie_id",
            {c: data.movies[c].to_numpy(dtype=object) for c in data.movies},
        )
        with db.indexes_dropped(conn, Rating.__table__):
            db.insert_columns(
                conn,
                Rating.__tablename__,
                {"user_id": data.user_id, "movie_id": data.movie_id, "value": data.value, "rated_at": data.rated_at},
            )
    timings["load"] = round(time.perf_counter() - started, 3)
    return GenerateResult(ratings, users, movies, timings)

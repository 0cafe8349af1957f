"""Synthetic catalogues: a realistic one of any size (benchmarks, load tests,
``recsql generate``) and a small one whose genres a person can check (``recsql demo``).

The large one reproduces the shape of real rating data on purpose:

* popularity is skewed: movie m's draw weight falls as a power of its rank (a few
  blockbusters, a long tail), and so does user activity (a few heavy raters);
* ratings come from a hidden low-rank taste model plus user and movie biases and
  noise, rounded to a 0.5-5 half-star scale, so factorization has something to find;
* each movie's genre is its strongest hidden taste dimension, so "similar movies" can be
  checked by eye; titles are built from genre words.

Everything is vectorized: 25 million ratings are drawn in a few seconds.  No
(user, movie) pair repeats.

The small one: movies belong to genres; each simulated user likes one or two genres and
rates mostly movies of those, higher when the genre fits.  The factorization has to
discover the genres from ratings alone, so "similar movies" of a western should come
out westerns: that is what the demo shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsql.errors import InvalidParameter

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Documentary", "Western")
WORDS = {
    "Action": ("Strike", "Fury", "Velocity", "Siege"),
    "Comedy": ("Mixup", "Weekend", "Neighbours", "Oops"),
    "Drama": ("Letters", "Harbour", "Winter", "Silence"),
    "Horror": ("Hollow", "Crypt", "Whisper", "Dread"),
    "Romance": ("Promise", "Summer", "Postcard", "Waltz"),
    "Sci-Fi": ("Orbit", "Nebula", "Signal", "Drift"),
    "Documentary": ("Rivers", "Makers", "Machines", "Islands"),
    "Western": ("Canyon", "Outlaw", "Saddle", "Frontier"),
}
RANK = len(GENRES)


@dataclass(frozen=True)
class Catalogue:
    """Movies and ratings, ready for :func:`recsql.data.imports.load_catalogue`."""

    movies: pd.DataFrame  # movie_id, title, genres
    ratings: pd.DataFrame  # user_id, movie_id, value and, when known, rated_at


def synthetic_ratings(ratings: int, users: int, movies: int, seed: int = 0) -> Catalogue:
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
    titles = pd.Series(words).str.cat([pd.Series(np.arange(1, movies + 1).astype(str))], sep=" ").radd("The ")
    return Catalogue(
        movies=pd.DataFrame({"movie_id": np.arange(1, movies + 1), "title": titles.to_numpy(), "genres": names}),
        ratings=pd.DataFrame({"user_id": u + 1, "movie_id": m + 1, "value": value, "rated_at": rated_at}),
    )


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with the given probabilities (inverse CDF: O(n log len))."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n)), len(weights) - 1)


# genre: (title patterns, words); "{}" takes a word.
DEMO_GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "western": (
        ("The Sheriff of {}", "Showdown at {}", "Last Ride to {}"),
        ("Dry Creek", "Red Canyon", "Dust Valley", "Silver Gulch"),
    ),
    "sci-fi": (
        ("Beyond {}", "The {} Protocol", "Escape from {}"),
        ("Orion", "the Ninth Moon", "Titan Station", "Nebula"),
    ),
    "romance": (("Love in {}", "A Summer in {}", "Letters from {}"), ("Paris", "Verona", "the Lake House", "Lisbon")),
    "horror": (
        ("The Curse of {}", "Night at {}", "Return to {}"),
        ("Blackwood", "Hollow Hill", "the Asylum", "Crow Manor"),
    ),
    "comedy": (
        ("My Neighbour from {}", "Weekend in {}", "Trouble in {}"),
        ("Ohio", "Vegas", "the Suburbs", "Accounting"),
    ),
}


def demo_catalogue(n_users: int = 600, ratings_per_user: int = 25, seed: int = 7) -> Catalogue:
    """Movies with genres and integer 1-5 ratings from users with genre tastes."""
    rng = np.random.default_rng(seed)
    titles, genres = [], []
    for genre, (patterns, words) in DEMO_GENRES.items():
        for pattern in patterns:
            for word in words:
                titles.append(pattern.format(word))
                genres.append(genre)
    n_movies, n_genres = len(titles), len(DEMO_GENRES)
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

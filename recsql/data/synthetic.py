"""Synthetic catalogues: a realistic one of any size (benchmarks, load tests,
``recsql generate``) and a small one whose genres a person can check (``recsql demo``).

The large one reproduces the shape of real rating data on purpose:

* popularity is skewed: movie m's draw weight falls as a power of its rank (a few
  blockbusters, a long tail), and so does user activity (a few heavy raters);
* tastes have two grains: eight genres and :data:`NICHES` finer niches; a movie
  belongs to one of each (its kind), so item-item models have neighbourhoods to find
  beyond a handful of broad factors;
* which movies a user rates follows their tastes as well as popularity (``choices``
  ``"taste"``, the default): a rating picks a kind of movie with probability
  proportional to the kind's popularity times exp(TASTE_PULL x the user's taste for
  its genre and niche), then a movie of that kind by popularity; one draw in
  :data:`BY_POPULARITY` ignores taste (everyone watches the blockbusters).  So
  who-rated-what carries the tastes, as in real data, and a most-popular list cannot
  win by construction; ``"popularity"`` draws by popularity alone (the generator before);
* ratings come from the same hidden tastes plus user and movie biases and noise,
  rounded to a 0.5-5 half-star scale, so factorization has something to find;
* each movie's genre is its strongest genre taste, so "similar movies" can be checked
  by eye; titles are built from genre words.

Everything is vectorized: 25 million ratings are drawn in seconds.  No (user, movie)
pair repeats.

The small one: movies belong to genres; each simulated user likes one or two genres and
rates mostly movies of those, higher when the genre fits.  The factorization has to
discover the genres from ratings alone, so "similar movies" of a western should come
out westerns: that is what the demo shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
NICHES = 24
NICHE_WEIGHT = 0.8  # a niche's pull beside its genre's, in tastes and in ratings
TASTE_PULL = 4.0
BY_POPULARITY = 0.2
Choices = Literal["taste", "popularity"]
CHOICES: tuple[str, ...] = ("taste", "popularity")


@dataclass(frozen=True)
class Catalogue:
    """Movies and ratings, ready for :func:`recsql.data.imports.load_catalogue`."""

    movies: pd.DataFrame  # movie_id, title, genres
    ratings: pd.DataFrame  # user_id, movie_id, value and, when known, rated_at


def synthetic_ratings(ratings: int, users: int, movies: int, seed: int = 0, choices: Choices = "taste") -> Catalogue:
    """``ratings`` distinct (user, movie) ratings of ``movies`` movies by ``users`` users,
    chosen by taste and popularity (``choices="taste"``) or by popularity alone."""
    if min(ratings, users, movies) < 1:
        raise InvalidParameter("ratings, users and movies must all be at least 1")
    if choices not in CHOICES:
        raise InvalidParameter(f"choices must be one of {', '.join(CHOICES)}, not {choices!r}")
    if ratings > 0.5 * users * movies:
        raise InvalidParameter(
            f"{ratings} ratings would fill more than half of the {users} x {movies} matrix; "
            "ask for fewer ratings or more users/movies"
        )
    rng = np.random.default_rng(seed)
    genre, niche, movie_taste, user_taste = _tastes(rng, users, movies)
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
        if choices == "taste":
            m = _chosen(rng, u, user_taste, genre * NICHES + niche, movie_weight)
        else:
            m = _draw(rng, movie_weight, need)
        keys = np.concatenate([keys, u.astype(np.int64) * movies + m])
        keys.sort()
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # drop repeated pairs
    keys = rng.permutation(keys)[:ratings]
    keys.sort()  # by user, then movie: the order the database will store them in
    u, m = (keys // movies).astype(np.int64), (keys % movies).astype(np.int64)
    # Chosen movies are liked movies: the mean would rise to ~3.9 without a lower intercept.
    raw = (3.1 if choices == "taste" else 3.5) + user_bias[u] + movie_bias[m]
    for start in range(0, ratings, 1_000_000):  # a chunk of tastes at a time: 25 M x 32 would be 3 GB
        at = slice(start, start + 1_000_000)
        raw[at] += np.einsum("ij,ij->i", user_taste[u[at]], movie_taste[m[at]])
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


def _tastes(rng: np.random.Generator, users: int, movies: int) -> tuple[np.ndarray, ...]:
    """Hidden tastes: a movie leans to one genre and one niche; users like some, dislike others."""
    genre, niche = rng.integers(0, RANK, movies), rng.integers(0, NICHES, movies)
    movie_taste = rng.normal(0, 0.25, (movies, RANK + NICHES)).astype(np.float32)
    movie_taste[:, RANK:] *= 0.4
    movie_taste[np.arange(movies), genre] += 1.0
    movie_taste[np.arange(movies), RANK + niche] += NICHE_WEIGHT
    user_taste = rng.normal(0, 0.45, (users, RANK + NICHES)).astype(np.float32)
    user_taste[:, RANK:] *= 0.8
    return genre, niche, movie_taste, user_taste


def _chosen(
    rng: np.random.Generator, users: np.ndarray, user_taste: np.ndarray, kind: np.ndarray, movie_weight: np.ndarray
) -> np.ndarray:
    """A movie for each draw's user: a kind (genre x niche) by popularity mass times
    exp(TASTE_PULL * the user's taste for it), then a movie of that kind by popularity;
    a BY_POPULARITY share of draws by popularity alone."""
    kinds = RANK * NICHES
    mass = np.bincount(kind, weights=movie_weight, minlength=kinds)
    taste = user_taste[:, :RANK, None] + NICHE_WEIGHT * user_taste[:, None, RANK:]
    pull = mass[None, :] * np.exp(TASTE_PULL * taste.reshape(len(user_taste), kinds))
    picked_kind = _draw_rows(rng, pull, users)
    by_kind = np.argsort(kind, kind="stable")
    movie_in_kind = _draw_rows(rng, _grouped(kind[by_kind], movie_weight[by_kind], kinds), picked_kind)
    starts = np.concatenate([[0], np.cumsum(np.bincount(kind, minlength=kinds))])
    chosen = by_kind[starts[picked_kind] + movie_in_kind]
    anyway = rng.random(len(users)) < BY_POPULARITY
    chosen[anyway] = _draw(rng, movie_weight, int(anyway.sum()))
    return chosen


def _grouped(group: np.ndarray, weights: np.ndarray, groups: int) -> np.ndarray:
    """Weights sorted by group as a groups x widest-group array, zero-padded."""
    counts = np.bincount(group, minlength=groups)
    table = np.zeros((groups, max(1, int(counts.max()))))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    table[group, np.arange(len(group)) - starts[group]] = weights
    return table


def _draw_rows(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of ``rows``, a column of that row of ``weights`` drawn in
    proportion to it: every row's CDF laid end to end (row r spans (r, r + 1]), one
    sorted search for all draws."""
    cdf = np.cumsum(weights, axis=1)
    total = cdf[:, -1:].copy()
    total[total == 0] = 1.0  # a row never drawn from (an empty kind) stays flat
    cdf = cdf / total + np.arange(len(weights))[:, None]
    queries = rows + rng.random(len(rows))
    order = np.argsort(queries)
    found = np.empty(len(rows), dtype=np.int64)
    found[order] = np.searchsorted(cdf.ravel(), queries[order])
    return np.clip(found - rows * weights.shape[1], 0, weights.shape[1] - 1)


def _draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with the given probabilities: inverse CDF of sorted uniforms
    (searchsorted walks sorted queries fast), then shuffled back to random order."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    drawn = np.minimum(np.searchsorted(cdf, np.sort(rng.random(n))), len(weights) - 1)
    return rng.permutation(drawn)


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

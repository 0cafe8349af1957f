"""Metrics beyond accuracy: what the stored recommendations do to the catalogue.

A model can predict ratings well and still show everyone the same hundred blockbusters.
These figures describe the lists themselves (no held-out ratings needed), so every
``train`` and ``evaluate`` stores them:

* ``coverage``: the share of the catalogue recommended to anyone.
* ``popularity_lift``: the mean popularity (training ratings) of a recommended movie
  over the mean popularity of a catalogue movie; 1 is no lean to popular movies.
* ``gini``: the Gini index of how often each movie is recommended, over the whole
  catalogue (0: every movie equally often; near 1: a few movies take every slot).
* ``novelty``: the mean self-information -log2(share of users who rated it) of a
  recommended movie, in bits (Zhou et al. 2010): higher is less obvious.
* ``intra_list_diversity``: the mean, over users with two or more recommendations, of
  the mean pairwise cosine distance (1 - cosine) of their list's movie feature vectors.

All of them read the lists as stored (``recommend_n`` per user, default 10; evaluate's
lists are the top 10).
"""

from __future__ import annotations

import numpy as np

from recsql.algorithms.topk import block_rows


def popularity_lift(recommended: np.ndarray, popularity: np.ndarray) -> dict[str, float]:
    """The mean popularity of recommended movies (every slot counts), the catalogue's
    mean, and their ratio.  ``popularity``: ratings per movie; ``-1`` slots are empty."""
    shown = recommended[recommended >= 0]
    catalogue = float(popularity.mean()) if len(popularity) else float("nan")
    mean = float(popularity[shown].mean()) if shown.size else float("nan")
    return {
        "recommended_popularity": mean,
        "catalogue_popularity": catalogue,
        "popularity_lift": mean / catalogue if catalogue else float("nan"),
    }


def gini(recommended: np.ndarray, n_movies: int) -> float:
    """The Gini index of recommendation counts over all ``n_movies`` (zeros included)."""
    counts = np.sort(np.bincount(recommended[recommended >= 0], minlength=n_movies)).astype(np.float64)
    total = counts.sum()
    if n_movies == 0 or total == 0:
        return float("nan")
    ranks = np.arange(1, n_movies + 1)
    return float(((2 * ranks - n_movies - 1) * counts).sum() / (n_movies * total))


def novelty(recommended: np.ndarray, raters: np.ndarray, n_users: int) -> float:
    """The mean -log2(raters / n_users) of recommended movies, every slot counted
    (``raters``: users who rated each movie in training, all at least 1)."""
    shown = recommended[recommended >= 0]
    if not shown.size or n_users == 0:
        return float("nan")
    return float(np.mean(-np.log2(raters[shown] / n_users)))


def intra_list_diversity(recommended: np.ndarray, movie_vectors: np.ndarray) -> float:
    """The mean over users (with 2+ movies listed) of the mean pairwise cosine distance
    of their movies' vectors.  Per user, with unit vectors u_i and s = sum u_i,
    sum over pairs i<j of cos(u_i, u_j) = (|s|^2 - n) / 2: no n x n matrix per user."""
    norms = np.linalg.norm(movie_vectors, axis=1, keepdims=True)
    unit = np.vstack([movie_vectors / np.where(norms == 0, 1.0, norms), np.zeros((1, movie_vectors.shape[1]))])
    lengths = (recommended >= 0).sum(axis=1)
    slots = np.where(recommended >= 0, recommended, len(movie_vectors))  # empty slots -> a zero vector
    total, users = 0.0, 0
    block = block_rows(max(1, recommended.shape[1] * movie_vectors.shape[1]))
    for start in range(0, len(recommended), block):
        n = lengths[start : start + block].astype(np.float64)
        summed = unit[slots[start : start + block]].sum(axis=1)
        listed = n >= 2
        pairs = n[listed] * (n[listed] - 1) / 2
        mean_cos = ((summed[listed] ** 2).sum(axis=1) - n[listed]) / 2 / pairs
        total += float((1.0 - mean_cos).sum())
        users += int(listed.sum())
    return total / users if users else float("nan")


def coverage(recommended: np.ndarray, n_movies: int) -> float:
    """The share of the catalogue that is on at least one user's list (-1: empty slot)."""
    shown = np.unique(recommended[recommended >= 0])
    return len(shown) / n_movies if n_movies else float("nan")


def beyond_accuracy(
    recommended: np.ndarray, ratings_per_movie: np.ndarray, n_users: int, movie_vectors: np.ndarray
) -> dict[str, float]:
    """Every metric of the module docstring for the lists ``recommended`` (movie
    indices, -1: empty).  ``ratings_per_movie`` counts each movie's training ratings (one
    per user and movie, so also its raters)."""
    n_movies = len(ratings_per_movie)
    return {
        "coverage": coverage(recommended, n_movies),
        **popularity_lift(recommended, ratings_per_movie),
        "gini": gini(recommended, n_movies),
        "novelty": novelty(recommended, np.maximum(ratings_per_movie, 1), n_users),
        "intra_list_diversity": intra_list_diversity(recommended, movie_vectors),
    }

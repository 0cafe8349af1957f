"""What serving answers with: small frozen records an application can return as JSON.

Each carries recsql's integer id and, in a catalogue of text ids, the application's own
key (``movie_key``), plus the catalogue's title and genres where it has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MovieInfo:
    movie_id: int
    title: str | None
    genres: str | None
    movie_key: str | None = None  # the application's id, in a catalogue of text ids


@dataclass(frozen=True)
class SimilarMovie:
    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    score: float
    movie_key: str | None = None  # the application's id, in a catalogue of text ids


@dataclass(frozen=True)
class Recommendation:
    """A recommended movie; ``source`` is "model" or, for users without ratings, "popular"
    (whose ``predicted_rating`` is then the movie's damped mean rating)."""

    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    predicted_rating: float | None
    source: str = "model"
    score: float | None = None  # what ordered the list (the view's ``score``)
    movie_key: str | None = None  # the application's id, in a catalogue of text ids
    model_id: int | None = None  # the version that served it (a traffic split's B, or the active model): log it


@dataclass(frozen=True)
class PopularMovie:
    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    score: float
    n_ratings: int
    mean_rating: float
    movie_key: str | None = None  # the application's id, in a catalogue of text ids
    model_id: int | None = None  # the version that served it (the active model)


@dataclass(frozen=True)
class Contribution:
    """How much one of the user's ratings pushed a prediction up (or down)."""

    movie_id: int
    title: str | None
    rating: float
    contribution: float
    movie_key: str | None = None  # the application's id, in a catalogue of text ids


def numbered(rows: Sequence[Any]) -> list[Recommendation]:
    """Stored recommendation rows as Recommendations ranked 1, 2, 3, ... in their order."""
    return [
        Recommendation(
            i + 1,
            r.movie_id,
            r.title,
            r.genres,
            r.predicted_rating,
            score=r.score,
            movie_key=r.movie_key,
            model_id=r.model_id,
        )
        for i, r in enumerate(rows)
    ]

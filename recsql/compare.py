"""Two stored models side by side (``recsql models diff A B``): what an operator checks
before ``recsql models activate``.

Metrics are compared with the direction that makes each better (:data:`BETTER`); the
lists by overlap: for every user both models list, the share of A's top N that is in
B's top N (``overlap@N``, 1: the same movies), and likewise each movie's similar
movies, with the movies whose neighbours changed most listed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import Connection, Engine

from recsql import store
from recsql.serving.admin import AdminReader
from recsql.store import catalogue, read

# +1: larger is better; -1: smaller is better; metrics not named here are not judged.
BETTER: dict[str, int] = {
    "train_rmse": -1,
    "train_mae": -1,
    "test_rmse": -1,
    "test_mae": -1,
    "precision_at_10": 1,
    "recall_at_10": 1,
    "ndcg_at_10": 1,
    "similar_ndcg_at_10": 1,
    "coverage": 1,
    "novelty": 1,
    "intra_list_diversity": 1,
    "popularity_lift": -1,
    "gini": -1,
}


@dataclass(frozen=True)
class MetricChange:
    name: str
    a: float | None
    b: float | None
    better: bool | None  # is B better than A (None: equal, not comparable, or not judged)


@dataclass(frozen=True)
class NeighbourChange:
    """A movie whose similar-movies list changed: the share of A's list still in B's,
    and the movie's ratings (None for a model trained from an application's tables)."""

    movie_id: int
    title: str | None
    overlap: float
    n_ratings: int | None


@dataclass(frozen=True)
class ModelDiff:
    a: int
    b: int
    metrics: list[MetricChange]
    n: int  # recommendations compared per user
    users_compared: int  # users both models list
    users_changed: int  # of those, whose top N differs (movies or order)
    mean_overlap: float  # mean overlap@N of their lists
    movies_compared: int
    mean_similar_overlap: float
    most_changed: list[NeighbourChange]


def diff_models(engine: Engine, a: int, b: int, *, movies: int = 10) -> ModelDiff:
    """Compare model ``a`` with model ``b`` (see the module docstring); ``movies``: how
    many of the most changed movies to list."""
    with engine.connect() as conn:
        first, second = store.complete_model(conn, a, "compared"), store.complete_model(conn, b, "compared")
        n = min(first.recommend_n, second.recommend_n)
        users, changed, overlap = _list_overlap(conn, "recommendations", a, b, n)
        k = min(int(first.params.get("similar_k", 20)), int(second.params.get("similar_k", 20)))
        movie_ids, _, similar_overlap = _list_overlap(conn, "similar", a, b, k)
        counts = None
        if second.source is None and len(movie_ids):
            # Only the movies that can make the list need counting (ties included).
            cut = np.sort(similar_overlap)[min(movies, len(movie_ids)) - 1]
            counts = _ratings_per_movie(conn, movie_ids, similar_overlap <= cut)
        # The least overlap first; among equals the most-rated, whose pages most people see.
        order = np.lexsort((-(counts if counts is not None else np.zeros(len(movie_ids))), similar_overlap))[:movies]
        worst = movie_ids[order]
    with AdminReader(engine) as admin:
        titles = {movie: info.title for movie, info in admin.titles(worst.tolist()).items()}
    names = [
        name
        for name in {**(first.metrics or {}), **(second.metrics or {})}
        if _number((first.metrics or {}).get(name)) or _number((second.metrics or {}).get(name))
    ]
    return ModelDiff(
        a=a,
        b=b,
        metrics=[
            metric_change(name, (first.metrics or {}).get(name), (second.metrics or {}).get(name)) for name in names
        ],
        n=n,
        users_compared=len(users),
        users_changed=int(changed.sum()),
        mean_overlap=float(overlap.mean()) if len(overlap) else float("nan"),
        movies_compared=len(movie_ids),
        mean_similar_overlap=float(similar_overlap.mean()) if len(similar_overlap) else float("nan"),
        most_changed=[
            NeighbourChange(
                int(m), titles.get(int(m)), float(similar_overlap[i]), None if counts is None else int(counts[i])
            )
            for m, i in zip(worst, order)
        ],
    )


def _list_overlap(
    conn: Connection, kind: Literal["recommendations", "similar"], a: int, b: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the users (or movies) both models list ``kind`` for (ascending ids): whether
    their top ``n`` lists differ, and the share of A's top ``n`` found in B's."""
    lists = [_as_rows(*read.ranked_lists(conn, kind, model, n), n) for model in (a, b)]
    (ids_a, top_a), (ids_b, top_b) = lists
    common = np.intersect1d(ids_a, ids_b)
    top_a = top_a[np.searchsorted(ids_a, common)]
    top_b = top_b[np.searchsorted(ids_b, common)]
    changed = (top_a != top_b).any(axis=1)
    found = (top_a[:, :, None] == top_b[:, None, :]).any(axis=2) & (top_a >= 0)
    listed = np.maximum((top_a >= 0).sum(axis=1), 1)
    return common, changed, found.sum(axis=1) / listed


def _as_rows(ids: np.ndarray, ranks: np.ndarray, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids ascending, their lists as rows of ``n`` items, -1 where empty)."""
    distinct, rows = np.unique(ids, return_inverse=True)
    top = np.full((len(distinct), n), -1, dtype=np.int64)
    top[rows, ranks - 1] = items
    return distinct, top


def metric_change(name: str, a: object, b: object) -> MetricChange:
    """Metric ``name`` of model A (``a``) and of model B (``b``), and whether B's is
    better (:data:`BETTER`; None when equal, missing or not judged)."""
    first = float(a) if _number(a) else None  # type: ignore[arg-type]
    second = float(b) if _number(b) else None  # type: ignore[arg-type]
    better = None
    direction = BETTER.get(name)
    if (
        direction
        and first is not None
        and second is not None
        and np.isfinite([first, second]).all()
        and first != second
    ):
        better = (second - first) * direction > 0
    return MetricChange(name, first, second, better)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ratings_per_movie(conn: Connection, movie_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """How many of recsql's ``ratings`` each of ``movie_ids`` has where ``wanted`` (0
    elsewhere, and for none)."""
    counts = np.zeros(len(movie_ids), dtype=np.int64)
    counts[wanted] = catalogue.rating_counts(conn, movie_ids[wanted])
    return counts

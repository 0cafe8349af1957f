"""The output tables' read side: a stored version decoded, for serving and for admins.

The layout :mod:`.write` encodes (long-format features, biases, ranked lists) is
decoded here and nowhere else: serving loads a version's movie side
(:func:`load_movie_factors`, :func:`load_similar`) and one user (:func:`load_user`);
the admin's views (inspection, comparison, the report) read one movie's or one user's
rows, whole lists and row counts of any version, active or not.  Callers get arrays,
:class:`~recsql.algorithms.factors.Factors` and small records, never SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, Engine, text

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import Popularity, Recommended
from recsql.algorithms.topk import TopK
from recsql.data.matrix import lookup_ids
from recsql.db import bulk
from recsql.store.models import OUTPUT_TABLES, ModelInfo, get_model


def _side(conn: Connection, side: Literal["user", "movie"], model_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side of a stored version: its ids (ascending), their feature rows and biases."""
    ids, features, values = bulk.read_columns(
        conn, f"SELECT {side}_id, feature, value FROM {side}_features WHERE model_id = {int(model_id)}"
    )
    bias_ids, biases = bulk.read_columns(
        conn, f"SELECT {side}_id, bias FROM {side}_biases WHERE model_id = {int(model_id)}", "if"
    )
    unique = np.unique(ids)
    rows = np.zeros((len(unique), int(features.max()) + 1 if len(features) else 0))
    rows[lookup_ids(unique, ids)[0], features] = values
    bias = np.zeros(len(unique))
    at, known = lookup_ids(unique, bias_ids)
    bias[at[known]] = biases[known]
    return unique, rows, bias


def load_movie_factors(conn: Connection, model: ModelInfo) -> Factors:
    """A stored version's movie side (factors, biases, mean, scale) as Factors with no
    users: serving adds the one user it scores (:meth:`Factors.with_users`)."""
    movie_ids, movie_factors, movie_bias = _side(conn, "movie", model.model_id)
    return Factors(
        user_ids=np.empty(0, dtype=np.int64),
        movie_ids=movie_ids,
        user_factors=np.empty((0, movie_factors.shape[1])),
        movie_factors=movie_factors,
        global_mean=float(model.global_mean or 0.0),
        user_bias=np.empty(0),
        movie_bias=movie_bias,
        clip=model.clip,
    )


def load_factors(conn: Connection, model: ModelInfo) -> Factors:
    """A stored version's whole model, users too (for :func:`recsql.load_model`)."""
    movies = load_movie_factors(conn, model)
    user_ids, user_factors, user_bias = _side(conn, "user", model.model_id)
    if user_factors.shape[1] != movies.movie_factors.shape[1]:  # a version of users alone, or of movies alone
        user_factors = np.zeros((len(user_ids), movies.movie_factors.shape[1]))
    return movies.with_users(user_ids, user_factors, user_bias)


def load_lists(conn: Connection, model: ModelInfo, factors: Factors) -> tuple[TopK, Recommended, Popularity]:
    """A stored version's ranked lists as the arrays a fit makes them from (indices into
    ``factors``' users and movies; -1 and NaN where a list is shorter than the longest)."""
    m = int(model.model_id)
    movies, ranks, similar, scores = bulk.read_columns(
        conn, f"SELECT movie_id, rank, similar_movie_id, score FROM movie_similarities WHERE model_id = {m}", "iiif"
    )
    similar_to, similar_scores = _ranked(
        factors.movie_ids, movies, ranks, lookup_ids(factors.movie_ids, similar)[0], scores
    )
    users, ranks, listed, predicted, scores = bulk.read_columns(
        conn,
        f"SELECT user_id, rank, movie_id, predicted_rating, score FROM user_recommendations WHERE model_id = {m}",
        "iiiff",
    )
    picks, picked_scores, picked_ratings = _ranked(
        factors.user_ids, users, ranks, lookup_ids(factors.movie_ids, listed)[0], scores, predicted
    )
    ranks, popular, score, counts, means = bulk.read_columns(
        conn,
        f"SELECT rank, movie_id, score, n_ratings, mean_rating FROM movie_popularity WHERE model_id = {m}",
        "iifif",
    )
    order = np.argsort(ranks)
    popularity = Popularity(
        movie_index=lookup_ids(factors.movie_ids, popular[order])[0],
        score=score[order],
        n_ratings=counts[order].astype(np.int64),
        mean_rating=means[order],
    )
    return TopK(similar_to, similar_scores), Recommended(picks, picked_scores, picked_ratings), popularity


def _ranked(
    owner_ids: np.ndarray, owners: np.ndarray, ranks: np.ndarray, listed: np.ndarray, *values: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Long rows (whose list, rank, what is listed, its values) as one row per owner in
    ``owner_ids`` and one column per rank: -1 where nothing is listed, NaN its values."""
    width = int(ranks.max()) if len(ranks) else 0
    rows = lookup_ids(owner_ids, owners)[0]
    out = [np.full((len(owner_ids), width), -1, dtype=np.int64)] + [
        np.full((len(owner_ids), width), np.nan) for _ in values
    ]
    for array, column in zip(out, (listed, *values)):
        array[rows, ranks - 1] = column
    return tuple(out)


def load_similar(conn: Connection, model: ModelInfo, movie_ids: np.ndarray) -> sp.csr_matrix:
    """A version's stored similar-movie scores as a movies x movies sparse matrix
    (rows and columns in the order of ``movie_ids``)."""
    movies, similar, scores = bulk.read_columns(
        conn, f"SELECT movie_id, similar_movie_id, score FROM movie_similarities WHERE model_id = {int(model.model_id)}"
    )
    rows, known_rows = lookup_ids(movie_ids, movies)
    cols, known_cols = lookup_ids(movie_ids, similar)
    keep = known_rows & known_cols
    shape = (len(movie_ids), len(movie_ids))
    return sp.csr_matrix((scores[keep], (rows[keep], cols[keep])), shape=shape)


def load_user(conn: Connection, model_id: int, user_id: int) -> tuple[np.ndarray, float] | None:
    """A stored user's feature vector and bias in a version, or None if it has none."""
    features = conn.execute(
        text("SELECT feature, value FROM user_features WHERE model_id = :m AND user_id = :u ORDER BY feature"),
        {"m": model_id, "u": user_id},
    ).all()
    bias = conn.execute(
        text("SELECT bias FROM user_biases WHERE model_id = :m AND user_id = :u"),
        {"m": model_id, "u": user_id},
    ).scalar()
    if not features or bias is None:
        return None
    return np.array([f.value for f in features]), float(bias)


def count_rows(conn: Connection, table: str, column: str, value: int, model_id: int) -> int:
    """How many rows of one of a model's output tables belong to one user or movie."""
    if table not in OUTPUT_TABLES or column not in ("user_id", "movie_id"):
        raise ValueError(f"not an output table column: {table}.{column}")
    return conn.execute(
        text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m AND {column} = :v"), {"m": model_id, "v": value}
    ).scalar_one()


def output_counts(engine: Engine, model_id: int) -> dict[str, int]:
    """How many rows each output table holds for a model (what ``models show`` prints)."""
    with engine.connect() as conn:
        get_model(conn, model_id)
        return {
            table: conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m"), {"m": model_id}).scalar_one()
            for table in OUTPUT_TABLES
        }


def table_rows(conn: Connection, table: str, model_id: int) -> tuple[int, int]:
    """(a model's rows, every version's rows) of one output table."""
    if table not in OUTPUT_TABLES:
        raise ValueError(f"not an output table: {table}")
    rows = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m"), {"m": model_id}).scalar_one()
    total = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    return int(rows), int(total)


# ---------------------------------------------------------------------- one movie, one user


@dataclass(frozen=True)
class StoredMovie:
    """What a version stores of one movie: features, bias, its similar movies (rank,
    similar_movie_id, title, score rows) and how many users have it on their list."""

    features: list[float]
    bias: float | None
    similar: list[Any]
    recommended_to: int


def stored_movie(conn: Connection, model_id: int, movie_id: int, limit: int) -> StoredMovie | None:
    """Movie ``movie_id`` in version ``model_id`` with its ``limit`` most similar movies
    (titled from the catalogue), or None if the version has no features for it."""
    m = {"m": model_id, "i": movie_id}
    rows = conn.execute(
        text("SELECT value FROM movie_features WHERE model_id = :m AND movie_id = :i ORDER BY feature"), m
    ).all()
    if not rows:
        return None
    bias = conn.execute(text("SELECT bias FROM movie_biases WHERE model_id = :m AND movie_id = :i"), m).scalar()
    similar = conn.execute(
        text(
            "SELECT s.rank, s.similar_movie_id, t.title, s.score FROM movie_similarities s "
            "LEFT JOIN movies t ON t.movie_id = s.similar_movie_id "
            "WHERE s.model_id = :m AND s.movie_id = :i ORDER BY s.rank LIMIT :n"
        ),
        {**m, "n": limit},
    ).all()
    recommended_to = conn.execute(
        text("SELECT COUNT(DISTINCT user_id) FROM user_recommendations WHERE model_id = :m AND movie_id = :i"), m
    ).scalar_one()
    return StoredMovie([float(r.value) for r in rows], bias, list(similar), int(recommended_to))


def user_recommendations(conn: Connection, model_id: int, user_id: int) -> list[Any]:
    """A user's stored list in a version: (rank, movie_id, predicted_rating, score) rows."""
    return list(
        conn.execute(
            text(
                "SELECT rank, movie_id, predicted_rating, score FROM user_recommendations "
                "WHERE model_id = :m AND user_id = :u ORDER BY rank"
            ),
            {"m": model_id, "u": user_id},
        ).all()
    )


# ---------------------------------------------------------------------- whole lists

# The ranked lists: their table, the column they are each of, and the column ranked.
_LISTS = {
    "recommendations": ("user_recommendations", "user_id", "movie_id"),
    "similar": ("movie_similarities", "movie_id", "similar_movie_id"),
}


def ranked_lists(
    conn: Connection, kind: Literal["recommendations", "similar"], model_id: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every top-``n`` list of a version (each user's recommendations, or each movie's
    similar movies) as columns: (whose list, rank, movie listed)."""
    table, column, item = _LISTS[kind]
    ids, ranks, items = bulk.read_columns(
        conn, f"SELECT {column}, rank, {item} FROM {table} WHERE model_id = {int(model_id)} AND rank <= {int(n)}", "iii"
    )
    return ids, ranks, items


def similarity_scores(conn: Connection, model_id: int) -> np.ndarray:
    """Every similar-movie score a version stores."""
    (scores,) = bulk.read_columns(conn, f"SELECT score FROM movie_similarities WHERE model_id = {int(model_id)}", "f")
    return scores


def similar_pairs(conn: Connection, model_id: int, movie_ids: list[int], depth: int) -> list[tuple[int, int]]:
    """(movie, similar movie) of the first ``depth`` similar movies of each of
    ``movie_ids`` in a version, by movie, best first."""
    listed = conn.execute(
        text(
            "SELECT movie_id, similar_movie_id FROM movie_similarities WHERE model_id = :m AND rank <= :d "
            f"AND movie_id IN ({', '.join(str(int(m)) for m in movie_ids)}) ORDER BY movie_id, rank"
        ),
        {"m": model_id, "d": depth},
    ).all()
    return [(int(m), int(s)) for m, s in listed]

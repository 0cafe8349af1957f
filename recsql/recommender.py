"""The serving API applications import: recommendations, similar movies, predictions,
explanations and answers for brand-new users, all from the active model.

    from recsql import Recommender
    rec = Recommender.from_url("postgresql://app@db/shop")       # or Recommender(engine)
    rec.similar(3, n=5)
    rec.recommend(42, n=10, exclude=[7])
    rec.recommend_for_ratings({3: 5, 9: 4})                      # a user the model never saw
    rec.explain(42, 7)
    rec.popular(10)

Lookups of precomputed answers are one indexed query on the views.  Answers computed on
the spot (fold-in of new users, predictions, explanations) use a snapshot of the active
model's movie factors, loaded once and reloaded when another model becomes active.
A Recommender built on a Connection runs every query on it, inside the host
application's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, delete, select, text

from recsql import db
from recsql.errors import InvalidParameter, NoActiveModel, UnknownMovie, UnknownUser
from recsql.foldin import contributions, fold_in
from recsql.matrix import lookup_ids
from recsql.models import ACTIVE, ModelRun, UserBias, UserFeature, UserRecommendation
from recsql.neighbors import top_k_largest
from recsql.query import SimilarMovie
from recsql.source import Source, read_only


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


@dataclass(frozen=True)
class PopularMovie:
    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    score: float
    n_ratings: int
    mean_rating: float


@dataclass(frozen=True)
class Contribution:
    """How much one of the user's ratings pushed a prediction up (or down)."""

    movie_id: int
    title: str | None
    rating: float
    contribution: float


@dataclass
class _Snapshot:
    model_id: int
    movie_ids: np.ndarray
    movie_factors: np.ndarray
    movie_bias: np.ndarray
    global_mean: float
    clip: tuple[float, float] | None
    source: Source | None = None

    def rows(self, movie_ids: Iterable[int]) -> np.ndarray:
        """Rows of known movies; raises UnknownMovie naming every unknown id."""
        ids = np.asarray(list(movie_ids), dtype=np.int64)
        rows, known = lookup_ids(self.movie_ids, ids)
        if not known.all():
            unknown = ", ".join(str(i) for i in ids[~known])
            raise UnknownMovie(unknown, f"is not in the active model ({self.model_id})")
        return rows

    def clipped(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, *self.clip) if self.clip else values


class Recommender:
    """Read recommendations from a database trained by recsql (see module docstring)."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind
        self._snapshot: _Snapshot | None = None

    @classmethod
    def from_url(cls, url: str | None = None) -> Recommender:
        from recsql.api import connect

        return cls(connect(url))

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            with nullcontext(self.bind) as conn:
                yield conn
        else:
            with self.bind.connect() as conn:
                yield conn

    # ------------------------------------------------------------------ precomputed

    def similar(self, movie_id: int, n: int = 10) -> list[SimilarMovie]:
        """The ``n`` movies most similar to ``movie_id``, best first."""
        with self._connection() as conn:
            rows = conn.execute(SIMILAR_SQL, {"movie_id": movie_id, "limit": n}).all()
            if not rows:
                model_id = _active_model_id(conn)
                if _count(conn, "movie_biases", "movie_id", movie_id, model_id) == 0:
                    raise UnknownMovie(movie_id, f"has no ratings in the active model ({model_id})")
        return [SimilarMovie(r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score) for r in rows]

    def popular(self, n: int = 10) -> list[PopularMovie]:
        """The most popular well-rated movies (damped mean), for users with no ratings."""
        with self._connection() as conn:
            rows = conn.execute(POPULAR_SQL, {"limit": n}).all()
            if not rows:
                _active_model_id(conn)
        return [PopularMovie(*r) for r in rows]

    def recommend(self, user_id: int, n: int = 10, exclude: Iterable[int] = ()) -> list[Recommendation]:
        """Top ``n`` movies for a user, leaving out ``exclude``.

        A user the model knows gets the movies stored with the run (or, when ``exclude``
        removes too many of them, a fresh ranking from the factors); a user with no
        ratings in the model gets the popular movies (``source="popular"``); a user who
        has rated every movie gets an empty list.
        """
        excluded = set(int(m) for m in exclude)
        with self._connection() as conn:
            rows = conn.execute(RECOMMEND_SQL, {"user_id": user_id, "limit": n + len(excluded)}).all()
            kept = [r for r in rows if r.movie_id not in excluded]
            if rows and len(kept) >= n:
                return _numbered(kept[:n])
            model_id = _active_model_id(conn)
            known = _count(conn, "user_biases", "user_id", user_id, model_id) > 0
            stored = _count(conn, "user_recommendations", "user_id", user_id, model_id)
        if rows and stored == len(rows) and stored < _stored_n(self.bind, model_id):
            return _numbered(kept)  # the stored list was every movie the user had not rated
        if not known:
            fallback = [p for p in self.popular(n + len(excluded)) if p.movie_id not in excluded]
            return [Recommendation(i + 1, p.movie_id, p.title, p.genres, p.score, "popular")
                    for i, p in enumerate(fallback[:n])]
        if not rows:
            return []  # the user has rated every movie (or the run stored no recommendations)
        snapshot = self._model()
        vector, bias = self._user_vector(user_id, snapshot)
        rated = self._ratings_of(user_id)
        return self._rank(snapshot, vector, bias, set(rated) | excluded, n)

    # ------------------------------------------------------------------ computed

    def recommend_for_ratings(
        self, ratings: Mapping[int, float], n: int = 10, exclude: Iterable[int] = ()
    ) -> list[Recommendation]:
        """Top ``n`` movies for someone the model has never seen, from a few ratings."""
        snapshot = self._model()
        folded = self._fold(snapshot, ratings)
        return self._rank(snapshot, folded.factors, folded.bias, set(ratings) | set(exclude), n)

    def save_user(self, user_id: int, ratings: Mapping[int, float], n: int = 10) -> list[Recommendation]:
        """Fold a user in and store their vector and recommendations under the active model,
        so SQL readers see them until the next retrain.  Returns the recommendations."""
        snapshot = self._model()
        folded = self._fold(snapshot, ratings)
        recommendations = self._rank(snapshot, folded.factors, folded.bias, set(ratings), n)
        k = len(folded.factors)
        model = snapshot.model_id
        engine_or_conn = self.bind
        with (engine_or_conn.begin() if isinstance(engine_or_conn, Engine) else nullcontext(engine_or_conn)) as conn:
            for table in (UserFeature, UserBias, UserRecommendation):
                conn.execute(delete(table).where(table.model_id == model, table.user_id == user_id))
            db.insert_columns(conn, "user_features", {
                "model_id": np.full(k, model), "user_id": np.full(k, user_id),
                "feature": np.arange(k), "value": folded.factors,
            })
            db.insert_columns(conn, "user_biases", {"model_id": [model], "user_id": [user_id], "bias": [folded.bias]})
            db.insert_columns(conn, "user_recommendations", {
                "model_id": np.full(len(recommendations), model),
                "user_id": np.full(len(recommendations), user_id),
                "rank": np.array([r.rank for r in recommendations], dtype=np.int64),
                "movie_id": np.array([r.movie_id for r in recommendations], dtype=np.int64),
                "predicted_rating": np.array([r.predicted_rating for r in recommendations], dtype=np.float64),
            })
        return recommendations

    def predict(self, user_id: int, movie_id: int) -> float:
        """The model's rating prediction for a known user and a known movie."""
        snapshot = self._model()
        row = snapshot.rows([movie_id])[0]
        vector, bias = self._user_vector(user_id, snapshot)
        value = snapshot.global_mean + bias + snapshot.movie_bias[row] + vector @ snapshot.movie_factors[row]
        return float(snapshot.clipped(np.array([value]))[0])

    def explain(self, user_id: int, movie_id: int, n: int = 5) -> list[Contribution]:
        """The user's rated movies that contributed most to their score for ``movie_id``.

        Uses the fold-in form of the user's vector (their ratings through the model's
        movie factors), whose prediction is exactly a sum of one term per rated movie.
        """
        snapshot = self._model()
        target = snapshot.rows([movie_id])[0]
        rated = self._ratings_of(user_id)
        ids = np.array(list(rated), dtype=np.int64)
        rows, known = lookup_ids(snapshot.movie_ids, ids)
        if not known.any():
            raise UnknownUser(user_id, "has no ratings of movies in the active model")
        ids, rows = ids[known], rows[known]
        values = np.array([rated[i] for i in ids])
        folded = fold_in(snapshot.movie_factors[rows], snapshot.movie_bias[rows], snapshot.global_mean,
                         values)
        share = contributions(folded, snapshot.movie_factors[target])
        order = np.argsort(-share, kind="stable")[:n]
        titles = self._titles(ids[order])
        return [
            Contribution(int(ids[i]), titles.get(int(ids[i]), (None, None))[0], float(values[i]), float(share[i]))
            for i in order
        ]

    # ------------------------------------------------------------------ internals

    def _fold(self, snapshot: _Snapshot, ratings: Mapping[int, float]):
        if not ratings:
            raise InvalidParameter("give at least one (movie, rating) pair")
        rows = snapshot.rows(ratings.keys())
        values = np.array([float(v) for v in ratings.values()])
        return fold_in(snapshot.movie_factors[rows], snapshot.movie_bias[rows], snapshot.global_mean,
                       values)

    def _rank(self, snapshot: _Snapshot, vector, bias: float, excluded: set[int], n: int) -> list[Recommendation]:
        scores = snapshot.movie_factors @ vector + snapshot.movie_bias + bias + snapshot.global_mean
        if excluded:
            rows, known = lookup_ids(snapshot.movie_ids, np.array(sorted(excluded), dtype=np.int64))
            scores[rows[known]] = -np.inf
        best, value = top_k_largest(scores[None, :], min(n, len(scores)))
        keep = np.isfinite(value[0])
        best, value = best[0][keep], snapshot.clipped(value[0][keep])
        titles = self._titles(snapshot.movie_ids[best])
        return [
            Recommendation(i + 1, int(m), *titles.get(int(m), (None, None)), float(v))
            for i, (m, v) in enumerate(zip(snapshot.movie_ids[best], value))
        ]

    def _titles(self, movie_ids: np.ndarray) -> dict[int, tuple[str | None, str | None]]:
        """(title, genres) of the given movies that the catalogue has."""
        if len(movie_ids) == 0:
            return {}
        ids = ", ".join(str(int(m)) for m in movie_ids)
        with self._connection() as conn:
            rows = conn.execute(text(f"SELECT movie_id, title, genres FROM movies WHERE movie_id IN ({ids})")).all()
        return {r.movie_id: (r.title, r.genres) for r in rows}

    def _ratings_of(self, user_id: int) -> dict[int, float]:
        """The user's ratings (the highest of repeated ones), from where the model read them."""
        source = self._model().source
        with self._connection() as conn:
            if source is None:
                rows = conn.execute(
                    text("SELECT movie_id, MAX(value) AS value FROM ratings WHERE user_id = :u GROUP BY movie_id"),
                    {"u": user_id},
                ).all()
            else:
                with read_only(conn) if isinstance(self.bind, Engine) else nullcontext(conn):
                    sql = text(source.ratings_sql(conn, user_filter=True))
                    rows = [(movie, value) for _, movie, value in conn.execute(sql, {"user_id": user_id})]
        ratings: dict[int, float] = {}
        for movie, value in rows:
            ratings[int(movie)] = max(float(value), ratings.get(int(movie), float("-inf")))
        return ratings

    def _user_vector(self, user_id: int, snapshot: _Snapshot) -> tuple[np.ndarray, float]:
        with self._connection() as conn:
            features = conn.execute(
                text("SELECT feature, value FROM user_features WHERE model_id = :m AND user_id = :u ORDER BY feature"),
                {"m": snapshot.model_id, "u": user_id},
            ).all()
            bias = conn.execute(
                text("SELECT bias FROM user_biases WHERE model_id = :m AND user_id = :u"),
                {"m": snapshot.model_id, "u": user_id},
            ).scalar()
        if not features or bias is None:
            raise UnknownUser(user_id, f"has no ratings in the active model ({snapshot.model_id})")
        return np.array([f.value for f in features]), float(bias)

    def _model(self) -> _Snapshot:
        """The active model's movie factors, cached until another model becomes active."""
        with self._connection() as conn:
            model_id = _active_model_id(conn)
            if self._snapshot is not None and self._snapshot.model_id == model_id:
                return self._snapshot
            run = conn.execute(select(ModelRun.__table__).where(ModelRun.id == model_id)).one()
            movies, features, values = db.read_triples(
                conn, f"SELECT movie_id, feature, value FROM movie_features WHERE model_id = {model_id}"
            )
            bias_ids, _, biases = db.read_triples(
                conn, f"SELECT movie_id, 0, bias FROM movie_biases WHERE model_id = {model_id}"
            )
        movie_ids = np.unique(movies)
        factors = np.zeros((len(movie_ids), int(features.max()) + 1))
        factors[np.searchsorted(movie_ids, movies), features] = values
        movie_bias = np.zeros(len(movie_ids))
        rows, known = lookup_ids(movie_ids, bias_ids)
        movie_bias[rows[known]] = biases[known]
        clip = (run.rating_min, run.rating_max) if run.rating_min is not None else None
        self._snapshot = _Snapshot(model_id, movie_ids, factors, movie_bias, float(run.global_mean or 0.0),
                                   clip, Source.from_params((run.params or {}).get("source")))
        return self._snapshot


SIMILAR_SQL = text(
    "SELECT rank, similar_movie_id, similar_title, similar_genres, score "
    "FROM similar_movies WHERE movie_id = :movie_id ORDER BY rank LIMIT :limit"
)
RECOMMEND_SQL = text(
    "SELECT rank, movie_id, title, genres, predicted_rating "
    "FROM recommended_movies WHERE user_id = :user_id ORDER BY rank LIMIT :limit"
)
POPULAR_SQL = text(
    "SELECT rank, movie_id, title, genres, score, n_ratings, mean_rating "
    "FROM popular_movies ORDER BY rank LIMIT :limit"
)


def _numbered(rows) -> list[Recommendation]:
    return [Recommendation(i + 1, r.movie_id, r.title, r.genres, r.predicted_rating) for i, r in enumerate(rows)]


def _stored_n(bind: Engine | Connection, model_id: int) -> int:
    """How many recommendations per user the run stored (its recommend_n)."""
    with (bind.connect() if isinstance(bind, Engine) else nullcontext(bind)) as conn:
        params = conn.execute(select(ModelRun.params).where(ModelRun.id == model_id)).scalar()
    return int((params or {}).get("recommend_n", 10))


def _active_model_id(conn: Connection) -> int:
    model_id = conn.execute(select(ModelRun.id).where(ModelRun.status == ACTIVE)).scalar()
    if model_id is None:
        raise NoActiveModel("no model has been trained yet; run `recsql train`")
    return model_id


def _count(conn: Connection, table: str, column: str, value: int, model_id: int) -> int:
    return conn.execute(
        text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m AND {column} = :v"), {"m": model_id, "v": value}
    ).scalar()

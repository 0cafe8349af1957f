"""The serving API applications import: recommendations, similar movies, predictions,
explanations and answers for brand-new users, all from the active model.

    from recsql import Recommender
    rec = Recommender.from_url("postgresql://app@db/shop")       # or Recommender(engine)
    rec.similar(3, limit=5)
    rec.recommend(42, limit=10, exclude=[7])
    rec.recommend_for_ratings({3: 5, 9: 4})                      # a user the model never saw
    rec.explain(42, 7)
    rec.popular(10)

Lookups of precomputed answers are one indexed query on the views.  Answers computed on
the spot (fold-in of new users, predictions, explanations) use the active model's movie
factors (:func:`recsql.store.load_movie_factors`), loaded once and reloaded when another
model becomes active, and score through :class:`~recsql.model.factors.Factors` like
training does.  A Recommender built on a Connection runs every query on it, inside the
host application's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, Engine, text

from recsql import store
from recsql.data.matrix import lookup_ids
from recsql.data.source import read_only
from recsql.db.migrate import connect
from recsql.errors import InvalidParameter, UnknownMovie, UnknownUser
from recsql.model.factors import Factors, Ranking
from recsql.model.foldin import FoldedUser, fold_in
from recsql.model.ranking import blend


@dataclass(frozen=True)
class MovieInfo:
    movie_id: int
    title: str | None
    genres: str | None


@dataclass(frozen=True)
class SimilarMovie:
    rank: int
    movie_id: int
    title: str | None
    genres: str | None
    score: float


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


@dataclass(frozen=True)
class _Active:
    """The active model as serving needs it: its record and its movie side."""

    info: store.ModelInfo
    movies: Factors
    similar: sp.csr_matrix | None  # stored similar-movie scores, when they order the lists

    def rows(self, movie_ids: Iterable[int]) -> np.ndarray:
        """Rows of known movies; raises UnknownMovie naming every unknown id."""
        ids = np.asarray(list(movie_ids), dtype=np.int64)
        rows, known = lookup_ids(self.movies.movie_ids, ids)
        if not known.all():
            unknown = ", ".join(str(i) for i in ids[~known])
            raise UnknownMovie(unknown, f"is not in the active model ({self.info.model_id})")
        return rows


class Recommender:
    """Read recommendations from a database trained by recsql (see module docstring)."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind
        self._active: _Active | None = None
        self._owns_bind = False

    @classmethod
    def from_url(cls, url: str | None = None) -> Recommender:
        """A Recommender on its own engine (URL, else ``$RECSQL_DATABASE_URL``);
        :meth:`close` (or a ``with`` block) disposes of it."""
        recommender = cls(connect(url))
        recommender._owns_bind = True
        return recommender

    def close(self) -> None:
        """Drop the loaded model; dispose of the engine if :meth:`from_url` made it
        (an engine or connection the caller passed in stays the caller's)."""
        self._active = None
        if self._owns_bind and isinstance(self.bind, Engine):
            self.bind.dispose()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def load(self) -> int:
        """Load the active model's movie factors now (otherwise the first call that needs
        them does), e.g. when a web application starts; returns the active model_id."""
        return self._model().info.model_id

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            with nullcontext(self.bind) as conn:
                yield conn
        else:
            with self.bind.connect() as conn:
                yield conn

    # ------------------------------------------------------------------ precomputed

    def movie(self, movie_id: int) -> MovieInfo:
        """The catalogue entry of a movie (title and genres may be unknown: None)."""
        with self._connection() as conn:
            row = conn.execute(MOVIE_SQL, {"movie_id": movie_id}).first()
        if row is None:
            return MovieInfo(movie_id, None, None)
        return MovieInfo(row.movie_id, row.title, row.genres)

    def similar(self, movie_id: int, limit: int = 5) -> list[SimilarMovie]:
        """The ``limit`` movies most similar to ``movie_id``, best first."""
        with self._connection() as conn:
            rows = conn.execute(SIMILAR_SQL, {"movie_id": movie_id, "limit": limit}).all()
            if not rows:
                model_id = store.active_model_id(conn)
                if store.count_rows(conn, "movie_biases", "movie_id", movie_id, model_id) == 0:
                    raise UnknownMovie(movie_id, f"has no ratings in the active model ({model_id})")
        return [SimilarMovie(r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score) for r in rows]

    def popular(self, limit: int = 10) -> list[PopularMovie]:
        """The most popular well-rated movies (damped mean), for users with no ratings."""
        with self._connection() as conn:
            rows = conn.execute(POPULAR_SQL, {"limit": limit}).all()
            if not rows:
                store.active_model_id(conn)
        return [PopularMovie(*r) for r in rows]

    def recommend(self, user_id: int, limit: int = 10, exclude: Iterable[int] = ()) -> list[Recommendation]:
        """Top ``limit`` movies for a user, leaving out ``exclude``.

        A user the model knows gets the movies stored with the run (or, when ``exclude``
        removes too many of them, a fresh ranking from the factors); a user with no
        ratings in the model gets the popular movies (``source="popular"``); a user who
        has rated every movie gets an empty list.
        """
        excluded = set(int(m) for m in exclude)
        with self._connection() as conn:
            rows = conn.execute(RECOMMEND_SQL, {"user_id": user_id, "limit": limit + len(excluded)}).all()
            kept = [r for r in rows if r.movie_id not in excluded]
            if rows and len(kept) >= limit:
                return _numbered(kept[:limit])
            model = store.get_model(conn, store.active_model_id(conn))
            known = store.count_rows(conn, "user_biases", "user_id", user_id, model.model_id) > 0
            stored = store.count_rows(conn, "user_recommendations", "user_id", user_id, model.model_id)
        if rows and stored == len(rows) and stored < model.recommend_n:
            return _numbered(kept)  # the stored list was every movie the user had not rated
        if not known:
            fallback = [p for p in self.popular(limit + len(excluded)) if p.movie_id not in excluded]
            return [Recommendation(i + 1, p.movie_id, p.title, p.genres, p.score, "popular")
                    for i, p in enumerate(fallback[:limit])]
        if not rows:
            return []  # the user has rated every movie (or the run stored no recommendations)
        active = self._model()
        user = self._stored_user(user_id, active)
        rated = self._ratings_of(user_id)
        return self._rank(active, user, set(rated), set(rated) | excluded, limit)

    # ------------------------------------------------------------------ computed

    def recommend_for_ratings(
        self, ratings: Mapping[int, float], limit: int = 10, exclude: Iterable[int] = ()
    ) -> list[Recommendation]:
        """Top ``limit`` movies for someone the model has never seen, from a few ratings."""
        active = self._model()
        folded = self._fold(active, ratings)
        return self._rank(active, folded.scored_by(active.movies), set(ratings), set(ratings) | set(exclude), limit)

    def save_user(self, user_id: int, ratings: Mapping[int, float], limit: int = 10) -> list[Recommendation]:
        """Fold a user in and store their vector and recommendations under the active model,
        so SQL readers see them until the next retrain.  Returns the recommendations."""
        active = self._model()
        folded = self._fold(active, ratings)
        recommendations = self._rank(active, folded.scored_by(active.movies), set(ratings), set(ratings), limit)
        bind = self.bind
        with (bind.begin() if isinstance(bind, Engine) else nullcontext(bind)) as conn:
            store.save_user(
                conn, active.info.model_id, user_id, folded.factors, folded.bias,
                np.array([r.movie_id for r in recommendations], dtype=np.int64),
                np.array([r.predicted_rating for r in recommendations], dtype=np.float64),
                np.array([r.score for r in recommendations], dtype=np.float64),
            )
        return recommendations

    def predict(self, user_id: int, movie_id: int) -> float:
        """The model's rating prediction for a known user and a known movie."""
        active = self._model()
        row = active.rows([movie_id])
        return float(self._stored_user(user_id, active).predict(np.zeros(1, dtype=np.int64), row)[0])

    def explain(self, user_id: int, movie_id: int, limit: int = 5) -> list[Contribution]:
        """The user's rated movies that contributed most to their score for ``movie_id``.

        Uses the fold-in form of the user's vector (their ratings through the model's
        movie factors), whose prediction is exactly a sum of one term per rated movie.
        """
        active = self._model()
        target = active.rows([movie_id])[0]
        rated = self._ratings_of(user_id)
        ids = np.array(list(rated), dtype=np.int64)
        rows, known = lookup_ids(active.movies.movie_ids, ids)
        if not known.any():
            raise UnknownUser(user_id, "has no ratings of movies in the active model")
        ids, rows = ids[known], rows[known]
        values = np.array([rated[i] for i in ids])
        share = fold_in(active.movies, rows, values).contributions(active.movies.movie_factors[target])
        order = np.argsort(-share, kind="stable")[:limit]
        titles = self._titles(ids[order])
        return [
            Contribution(int(ids[i]), titles.get(int(ids[i]), (None, None))[0], float(values[i]), float(share[i]))
            for i in order
        ]

    # ------------------------------------------------------------------ internals

    def _fold(self, active: _Active, ratings: Mapping[int, float]) -> FoldedUser:
        if not ratings:
            raise InvalidParameter("give at least one (movie, rating) pair")
        rows = active.rows(ratings.keys())
        return fold_in(active.movies, rows, np.array([float(v) for v in ratings.values()]))

    def _rank(
        self, active: _Active, user: Factors, rated: set[int], excluded: set[int], limit: int
    ) -> list[Recommendation]:
        """The best ``limit`` movies for the one user of ``user`` that are not ``excluded``,
        ordered as the active model's stored lists are: by the item-item choice model
        (here: the stored similar-movie lists of the ``rated`` movies, summed) blended with
        the predicted rating, or by predicted rating alone."""
        ids = active.movies.movie_ids
        n_movies = len(ids)
        rows, known = lookup_ids(ids, np.array(sorted(excluded), dtype=np.int64))
        cols = np.unique(rows[known])
        skip = sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, n_movies))
        rank: Ranking | None = None
        if active.similar is not None:
            liked, known = lookup_ids(ids, np.array(sorted(rated), dtype=np.int64))
            choice = np.asarray(active.similar[liked[known]].sum(axis=0)).ravel()

            def rank(_rows: np.ndarray, predictions: np.ndarray) -> np.ndarray:
                return blend(choice[None, :], user.clipped(predictions), user.global_mean)

        best, value = user.recommend(skip, limit, exact=True, rank=rank)
        keep = best[0] >= 0
        cols, scores = best[0][keep], value[0][keep]
        predicted = user.predict(np.zeros(len(cols), dtype=np.int64), cols)
        titles = self._titles(ids[cols])
        return [
            Recommendation(i + 1, int(m), *titles.get(int(m), (None, None)), float(p), score=float(v))
            for i, (m, p, v) in enumerate(zip(ids[cols], predicted, scores))
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
        source = self._model().info.source
        rows: Sequence[Any]
        if source is None:
            with self._connection() as conn:
                rows = conn.execute(
                    text("SELECT movie_id, MAX(value) AS value FROM ratings WHERE user_id = :u GROUP BY movie_id"),
                    {"u": user_id},
                ).all()
        else:
            # The application's query runs read-only whichever way recsql was called: on a
            # connection of its own (a host's transaction may already have written, and
            # can no longer be made read-only).
            with self.bind.engine.connect() as own, read_only(own):
                sql = text(source.ratings_sql(own, user_filter=True))
                rows = [(movie, value) for _, movie, value in own.execute(sql, {"user_id": user_id})]
        ratings: dict[int, float] = {}
        for movie, value in rows:
            ratings[int(movie)] = max(float(value), ratings.get(int(movie), float("-inf")))
        return ratings

    def _stored_user(self, user_id: int, active: _Active) -> Factors:
        """The active model's movies with one stored user (row 0), or UnknownUser."""
        with self._connection() as conn:
            found = store.load_user(conn, active.info.model_id, user_id)
        if found is None:
            raise UnknownUser(user_id, f"has no ratings in the active model ({active.info.model_id})")
        vector, bias = found
        return active.movies.with_users(np.array([user_id]), vector[None, :], np.array([bias]))

    def _model(self) -> _Active:
        """The active model's movie side, cached until another model becomes active."""
        with self._connection() as conn:
            model_id = store.active_model_id(conn)
            if self._active is not None and self._active.info.model_id == model_id:
                return self._active
            info = store.get_model(conn, model_id)
            movies = store.load_movie_factors(conn, info)
            similar = store.load_similar(conn, info, movies.movie_ids) if info.lists == "items" else None
            self._active = _Active(info, movies, similar)
        return self._active


MOVIE_SQL = text("SELECT movie_id, title, genres FROM movies WHERE movie_id = :movie_id")
SIMILAR_SQL = text(
    "SELECT rank, similar_movie_id, similar_title, similar_genres, score "
    "FROM similar_movies WHERE movie_id = :movie_id ORDER BY rank LIMIT :limit"
)
RECOMMEND_SQL = text(
    "SELECT rank, movie_id, title, genres, predicted_rating, score "
    "FROM recommended_movies WHERE user_id = :user_id ORDER BY rank LIMIT :limit"
)
POPULAR_SQL = text(
    "SELECT rank, movie_id, title, genres, score, n_ratings, mean_rating "
    "FROM popular_movies ORDER BY rank LIMIT :limit"
)


def _numbered(rows: Sequence[Any]) -> list[Recommendation]:
    return [Recommendation(i + 1, r.movie_id, r.title, r.genres, r.predicted_rating, score=r.score)
            for i, r in enumerate(rows)]

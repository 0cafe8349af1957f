"""The application's :class:`Recommender`: what a web request asks of the active model.

Precomputed answers (similar movies, a known user's recommendations, the popular movies)
are one indexed query on the views (:mod:`recsql.store.views`), whatever the batch size.
Answers computed on the spot (fold-in of new users, predictions, explanations) use the
active model's movie side, loaded once (:func:`recsql.store.load_movie_factors`) and
reloaded when another model becomes active, and score through
:class:`~recsql.algorithms.factors.Factors` like training does.  Arguments are checked first
(:mod:`.checks`) and database failures translated (:mod:`.translate`); connections,
namespaces and application keys are :class:`~recsql.serving.reader.Reader`'s.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsql import store
from recsql.algorithms.factors import Factors
from recsql.algorithms.foldin import FoldedUser, fold_in
from recsql.algorithms.fresh import rank_fresh
from recsql.data.matrix import lookup_ids
from recsql.errors import UnknownMovie, UnknownUser
from recsql.serving.answers import Contribution, MovieInfo, PopularMovie, Recommendation, SimilarMovie, numbered
from recsql.serving.checks import (
    MAX_LIMIT,
    check_batch,
    check_id,
    check_ids,
    check_limit,
    check_ratings,
    check_scale,
)
from recsql.serving.reader import DEFAULT_TIMEOUT, Bind, Reader
from recsql.serving.translate import database_errors
from recsql.store import views


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


def _pattern(movie_ids: np.ndarray, chosen: set[int]) -> sp.csr_matrix:
    """One user's row marking ``chosen`` of the model's movies (ids it lacks ignored)."""
    rows, known = lookup_ids(movie_ids, np.array(sorted(chosen), dtype=np.int64))
    cols = np.unique(rows[known])
    return sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, len(movie_ids)))


class Recommender(Reader):
    """Read recommendations from a database trained by recsql (see :mod:`recsql.serving`).

    One Recommender on an Engine or URL can serve all of an application's threads: each
    call borrows a pooled connection, and the cached model is swapped whole under a lock.
    One on a Connection or Session is as single-threaded as what it was given."""

    MAX_LIMIT = MAX_LIMIT

    def __init__(self, bind: Bind | str, *, schema: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        """See :class:`~recsql.serving.reader.Reader`: ``bind`` is an Engine, Connection,
        ORM Session or URL (:meth:`save_user` writes in a Connection's or Session's
        transaction; the caller commits), ``schema`` recsql's namespace, ``timeout`` the
        seconds each call's queries may run and wait for locks."""
        super().__init__(bind, schema=schema, timeout=timeout)
        self._active: _Active | None = None
        self._loading = threading.Lock()  # one thread loads a new model; the others wait for it

    def close(self) -> None:
        """Drop the loaded model; dispose of the engine if the Recommender made it from a
        URL (an engine, connection or session the caller passed in stays the caller's)."""
        self._active = None
        super().close()

    @database_errors
    def load(self) -> int:
        """Load the active model's movie factors now (otherwise the first call that needs
        them does), e.g. when a web application starts; returns the active model_id."""
        return self._model().info.model_id

    # ------------------------------------------------------------------ precomputed

    @database_errors
    def movie(self, movie_id: int | str) -> MovieInfo:
        """The catalogue entry of a movie (title and genres may be unknown: None)."""
        return self._movie_info(movie_id)

    @database_errors
    def similar(self, movie_id: int | str, limit: int = 5) -> list[SimilarMovie]:
        """The ``limit`` movies most similar to ``movie_id`` (recsql's id, or the
        application's key in a catalogue of text ids), best first."""
        limit = check_limit(limit)
        movie_id = self._movie_id(movie_id)
        return self._similar([movie_id], limit)[movie_id]

    @database_errors
    def similar_many(self, movie_ids: Iterable[int | str], limit: int = 5) -> dict[int | str, list[SimilarMovie]]:
        """:meth:`similar` for several movies (a page that shows them) in one query, keyed
        by movie id in the order given.  Like :meth:`similar`, a movie the active model
        does not know raises UnknownMovie, naming every unknown id: a batch is answered
        whole or not at all, so a typo is never a silently missing key.  Keys given as
        application keys key the answer too."""
        given = check_batch(movie_ids, "movie")
        limit = check_limit(limit)
        mapped = self._from_keys("movie", given)
        unknown = [str(v) for v in given if mapped[v] is None]
        if unknown:
            raise UnknownMovie(", ".join(unknown), "is not a movie key of this catalogue")
        answers = self._similar(check_ids([mapped[v] for v in given], "movie"), limit)
        return {v: answers[check_id(mapped[v], "movie")] for v in given}

    def _similar(self, movie_ids: list[int], limit: int) -> dict[int, list[SimilarMovie]]:
        found: dict[int, list[SimilarMovie]] = {m: [] for m in movie_ids}
        if not movie_ids:
            return found
        with self._connection() as conn:
            for r in views.similar_lists(conn, movie_ids, limit):
                found[r.movie_id].append(
                    SimilarMovie(
                        r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score, r.similar_movie_key
                    )
                )
            listless = [m for m, rows in found.items() if not rows]
            if listless:  # unknown, or known without a list: only then a second query tells which
                model_id = store.active_model_id(conn)
                known = views.known_movies(conn, model_id, listless)
                unknown = [m for m in listless if m not in known]
                if unknown:  # the id itself when there is one, as similar() always raised
                    ids = unknown[0] if len(unknown) == 1 else ", ".join(map(str, unknown))
                    raise UnknownMovie(ids, f"has no ratings in the active model ({model_id})")
        return found

    @database_errors
    def popular(self, limit: int = 10) -> list[PopularMovie]:
        """The most popular well-rated movies (damped mean), for users with no ratings."""
        return self._popular(check_limit(limit))

    def _popular(self, limit: int) -> list[PopularMovie]:
        with self._connection() as conn:
            rows = views.popular(conn, limit)
            if not rows:
                store.active_model_id(conn)
        return [PopularMovie(*r) for r in rows]

    @database_errors
    def recommend(self, user_id: int | str, limit: int = 10, exclude: Iterable[int | str] = ()) -> list[Recommendation]:
        """Top ``limit`` movies for a user, leaving out ``exclude``.

        A user the model knows gets the movies stored with the run (or, when ``exclude``
        removes too many of them, a fresh ranking from the factors); a user with no
        ratings in the model gets the popular movies (``source="popular"``); a user who
        has rated every movie gets an empty list.
        """
        limit = check_limit(limit)
        excluded = self._excluded(exclude)
        resolved = self._user_id(user_id)
        if resolved is None:
            return self._popular_instead(limit, excluded)  # a key the catalogue has never seen
        user_id = resolved
        with self._connection() as conn:
            rows = views.recommended(conn, user_id, limit + len(excluded))
            kept = [r for r in rows if r.movie_id not in excluded]
            if rows and len(kept) >= limit:
                return numbered(kept[:limit])
            model = store.active_info(conn)
            known = store.count_rows(conn, "user_biases", "user_id", user_id, model.model_id) > 0
            stored = store.count_rows(conn, "user_recommendations", "user_id", user_id, model.model_id)
        if rows and stored == len(rows) and stored < model.recommend_n:
            return numbered(kept)  # the stored list was every movie the user had not rated
        if not known:
            return self._popular_instead(limit, excluded)
        if not rows:
            return []  # the user has rated every movie (or the run stored no recommendations)
        return self._ranked_from_factors(user_id, limit, excluded)

    @database_errors
    def recommend_many(self, user_ids: Iterable[int | str], limit: int = 10) -> dict[int | str, list[Recommendation]]:
        """:meth:`recommend` for several users (a newsletter batch) in one query, keyed by
        user id in the order given, with the same answers: a user the model does not know
        gets the popular movies, one who rated every movie an empty list.

        Users whose stored list is shorter than ``limit`` cost one more query, together
        (which of them the model knows); new users one more (the popular movies), and
        only a ``limit`` beyond the stored lists' length ranks from the factors, user by
        user, as :meth:`recommend` does.
        """
        given = check_batch(user_ids, "user")
        limit = check_limit(limit)
        mapped = self._from_keys("user", given)
        answers = self._recommend_many(check_ids([m for m in mapped.values() if m is not None], "user"), limit)
        # Users the model does not know (and keys the catalogue lacks) share one popular list.
        popular = functools.cache(lambda: self._popular_instead(limit, set()))
        lists = {v: None if mapped[v] is None else answers[check_id(mapped[v], "user")] for v in given}
        return {v: popular() if found is None else found for v, found in lists.items()}

    def _recommend_many(self, user_ids: list[int], limit: int) -> dict[int, list[Recommendation] | None]:
        """Each user's list; None for a user the model does not know."""
        found: dict[int, list[Any]] = {u: [] for u in user_ids}
        if not user_ids:
            return {}
        with self._connection() as conn:
            for r in views.recommended_many(conn, user_ids, limit):
                found[r.user_id].append(r)
            short = [u for u, rows in found.items() if len(rows) < limit]
            known = views.known_users(conn, short) if short else set[int]()
            stored_n = store.active_info(conn).recommend_n if known else 0
        answers: dict[int, list[Recommendation] | None] = {}
        for user_id, rows in found.items():
            if len(rows) >= limit or (user_id in known and len(rows) < stored_n):
                answers[user_id] = numbered(rows)  # the stored list, or all the user has not rated
            elif user_id not in known:
                answers[user_id] = None
            else:
                answers[user_id] = self._ranked_from_factors(user_id, limit, set())
        return answers

    def _popular_instead(self, limit: int, excluded: set[int]) -> list[Recommendation]:
        """The popular movies as recommendations, for a user the model does not know."""
        fallback = [p for p in self._popular(limit + len(excluded)) if p.movie_id not in excluded]
        return [
            Recommendation(
                i + 1, p.movie_id, p.title, p.genres, p.score, "popular", movie_key=p.movie_key, model_id=p.model_id
            )
            for i, p in enumerate(fallback[:limit])
        ]

    def _ranked_from_factors(self, user_id: int, limit: int, excluded: set[int]) -> list[Recommendation]:
        """A stored user's list ranked afresh, when the stored one is too short."""
        active = self._model()
        user = self._stored_user(user_id, active)
        rated = self._ratings_of(user_id, self._source_of(active.info))
        return self._rank(active, user, set(rated), set(rated) | excluded, limit)

    # ------------------------------------------------------------------ computed

    @database_errors
    def recommend_for_ratings(
        self, ratings: Mapping[Any, float], limit: int = 10, exclude: Iterable[int | str] = ()
    ) -> list[Recommendation]:
        """Top ``limit`` movies for someone the model has never seen, from a few ratings
        (keyed by movie id, or by the application's keys)."""
        given, limit = self._ratings(ratings), check_limit(limit)
        excluded = self._excluded(exclude)
        active = self._model()
        folded = self._fold(active, given)
        return self._rank(active, folded.scored_by(active.movies), set(given), set(given) | excluded, limit)

    @database_errors
    def save_user(self, user_id: int, ratings: Mapping[Any, float], limit: int = 10) -> list[Recommendation]:
        """Fold a user in and store their vector and recommendations under the active model,
        so SQL readers see them until the next retrain.  Returns the recommendations."""
        user_id, given, limit = check_id(user_id, "user"), self._ratings(ratings), check_limit(limit)
        active = self._model()
        folded = self._fold(active, given)
        recommendations = self._rank(active, folded.scored_by(active.movies), set(given), set(given), limit)
        with self._transaction() as conn:
            store.save_user(
                conn,
                active.info.model_id,
                user_id,
                folded.factors,
                folded.bias,
                np.array([r.movie_id for r in recommendations], dtype=np.int64),
                np.array([r.predicted_rating for r in recommendations], dtype=np.float64),
                np.array([r.score for r in recommendations], dtype=np.float64),
            )
        return recommendations

    @database_errors
    def predict(self, user_id: int | str, movie_id: int | str) -> float:
        """The model's rating prediction for a known user and a known movie."""
        user_id, movie_id = self._known_user(user_id), self._movie_id(movie_id)
        active = self._model()
        row = active.rows([movie_id])
        return float(self._stored_user(user_id, active).predict(np.zeros(1, dtype=np.int64), row)[0])

    @database_errors
    def explain(self, user_id: int | str, movie_id: int | str, limit: int = 5) -> list[Contribution]:
        """The user's rated movies that contributed most to their score for ``movie_id``.

        Uses the fold-in form of the user's vector (their ratings through the model's
        movie factors), whose prediction is exactly a sum of one term per rated movie.
        """
        limit = check_limit(limit)
        user_id, movie_id = self._known_user(user_id), self._movie_id(movie_id)
        active = self._model()
        target = active.rows([movie_id])[0]
        rated = self._ratings_of(user_id, self._source_of(active.info))
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
            Contribution(
                int(ids[i]),
                titles.get(int(ids[i]), (None, None, None))[0],
                float(values[i]),
                float(share[i]),
                titles.get(int(ids[i]), (None, None, None))[2],
            )
            for i in order
        ]

    # ------------------------------------------------------------------ internals

    def _excluded(self, exclude: Iterable[int | str]) -> set[int]:
        given = check_batch(exclude, "movie", most=None)
        mapped = self._from_keys("movie", given)
        return {check_id(m, "movie") for m in mapped.values() if m is not None}  # unknown keys: nothing to leave out

    def _ratings(self, ratings: Mapping[Any, float]) -> dict[int, float]:
        """Ratings keyed by movie id or application key, as {movie id: rating}."""
        if isinstance(ratings, Mapping) and any(isinstance(k, str) for k in ratings):
            mapped = self._from_keys("movie", list(ratings))
            unknown = [str(k) for k, m in mapped.items() if m is None]
            if unknown:
                raise UnknownMovie(", ".join(unknown), "is not a movie key of this catalogue")
            ratings = {mapped[k]: v for k, v in ratings.items()}
        return check_ratings(ratings)

    def _fold(self, active: _Active, ratings: dict[int, float]) -> FoldedUser:
        """The new user's vector, once their ratings are known to be on the model's scale."""
        check_scale(ratings, active.info)
        rows = active.rows(ratings.keys())
        return fold_in(active.movies, rows, np.array(list(ratings.values())))

    def _rank(
        self, active: _Active, user: Factors, rated: set[int], excluded: set[int], limit: int
    ) -> list[Recommendation]:
        """The best ``limit`` movies for the one user of ``user`` that are not ``excluded``,
        ordered as the active model's stored lists are: by the item-item choice model
        (here: the stored similar-movie lists of the ``rated`` movies, summed) blended with
        the predicted rating, or by predicted rating alone."""
        ids = active.movies.movie_ids
        listed = rank_fresh(user, active.similar, _pattern(ids, rated), _pattern(ids, excluded), limit)
        keep = listed.indices[0] >= 0
        cols, scores, predicted = listed.indices[0][keep], listed.scores[0][keep], listed.predicted[0][keep]
        titles = self._titles(ids[cols])
        return [
            Recommendation(
                i + 1,
                int(m),
                *titles.get(int(m), (None, None))[:2],
                float(p),
                score=float(v),
                movie_key=titles.get(int(m), (None, None, None))[2],
                model_id=active.info.model_id,
            )
            for i, (m, p, v) in enumerate(zip(ids[cols], predicted, scores))
        ]

    def _stored_user(self, user_id: int, active: _Active) -> Factors:
        """The active model's movies with one stored user (row 0), or UnknownUser."""
        with self._connection() as conn:
            found = store.load_user(conn, active.info.model_id, user_id)
        if found is None:
            raise UnknownUser(user_id, f"has no ratings in the active model ({active.info.model_id})")
        vector, bias = found
        return active.movies.with_users(np.array([user_id]), vector[None, :], np.array([bias]))

    def _model(self) -> _Active:
        """The active model's movie side, cached until another model becomes active.

        Threads share it: the cache is one reference, replaced whole, and each caller
        keeps the one it got for the rest of its call; the lock makes the threads that
        notice a new model at the same moment load it once, not once each."""
        with self._connection() as conn:
            model_id = store.active_model_id(conn)
        cached = self._active
        if cached is not None and cached.info.model_id == model_id:
            return cached
        with self._loading:
            cached = self._active
            if cached is not None and cached.info.model_id == model_id:
                return cached  # loaded by the thread this one waited for
            with self._connection() as conn:
                info = store.active_info(conn)
                movies = store.load_movie_factors(conn, info)
                similar = store.load_similar(conn, info, movies.movie_ids) if info.lists == "items" else None
            self._active = loaded = _Active(info, movies, similar)
        return loaded

"""The serving API applications import: recommendations, similar movies, predictions,
explanations and answers for brand-new users, all from the active model.

    from recsql import Recommender
    rec = Recommender("postgresql://app@db/shop")   # or an Engine, a Connection, an ORM Session
    rec.similar(3, limit=5)
    rec.similar_many([3, 9], limit=5)                            # one query for a page of movies
    rec.recommend(42, limit=10, exclude=[7])
    rec.recommend_many([42, 43])
    rec.recommend_for_ratings({3: 5, 9: 4})                      # a user the model never saw
    rec.explain(42, 7)
    rec.popular(10)

Lookups of precomputed answers are one indexed query on the views.  Answers computed on
the spot (fold-in of new users, predictions, explanations) use the active model's movie
factors (:func:`recsql.store.load_movie_factors`), loaded once and reloaded when another
model becomes active, and score through :class:`~recsql.model.factors.Factors` like
training does.  A Recommender built on a Connection runs every query on it, inside the
host application's transaction; one built on an ORM Session, in the session's.

Made for web applications: every argument is checked before any query runs (ids are
ints, a ``limit`` is 1 to :data:`MAX_LIMIT`, ratings are finite and on the active model's
scale) and refused with :class:`~recsql.errors.InvalidParameter`; the database's own
failures become :class:`~recsql.errors.DatabaseUnavailable` (or ``SchemaError``), so every
error is a RecsqlError with an ``http_status``.  One Recommender on an Engine or URL can
serve all of an application's threads: each call borrows a pooled connection, and the
cached model is swapped whole under a lock.  A Recommender on a Connection or Session is
as single-threaded as what it was given.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeGuard, TypeVar

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, scoped_session

from recsql import store
from recsql.data import keys
from recsql.data.keys import Side
from recsql.data.matrix import lookup_ids
from recsql.data.source import Source, reading
from recsql.db import settings as session_settings
from recsql.db.engine import resolve_schema, resolve_url
from recsql.db.migrate import connect
from recsql.db.timeouts import SERVING_SETTING, timeout_error
from recsql.errors import DatabaseUnavailable, InvalidParameter, RecsqlError, SchemaError, UnknownMovie, UnknownUser
from recsql.model.factors import Factors, Ranking
from recsql.model.foldin import FoldedUser, fold_in
from recsql.model.ranking import blend

DEFAULT_TIMEOUT = 10.0
"""Seconds one call's queries may run, or wait for a lock, before DatabaseUnavailable."""

MAX_LIMIT = 1000
"""The longest list (``limit``) and the biggest batch (ids of ``similar_many`` and
``recommend_many``) one call answers: a web request can ask for anything, and a page of
recommendations is far shorter; a bound keeps one request from costing a table scan."""

_INT64 = (-(2**63), 2**63 - 1)  # ids are BIGINT in the database: a bigger one is a driver error

P = ParamSpec("P")
R = TypeVar("R")


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


@dataclass(frozen=True)
class Contribution:
    """How much one of the user's ratings pushed a prediction up (or down)."""

    movie_id: int
    title: str | None
    rating: float
    contribution: float
    movie_key: str | None = None  # the application's id, in a catalogue of text ids


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


# ---------------------------------------------------------------------- database errors


def _database_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn the failures of the database a deployment causes (server down, connection
    lost, locked, timed out, tables missing, privileges missing) into RecsqlErrors, so an
    application's one handler answers them with a status instead of a traceback."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (DBAPIError, PoolTimeout, DisconnectionError) as exc:
            recommender = args[0]
            assert isinstance(recommender, Recommender)
            translated = _translated(exc, recommender)
            if translated is None:
                raise
            raise translated from exc

    return wrapper


def _translated(exc: Exception, recommender: Recommender) -> RecsqlError | None:
    """The RecsqlError for a database failure, or None for one that is recsql's bug
    (bad SQL, a constraint recsql broke): those keep their traceback."""
    orig = getattr(exc, "orig", None)
    said = str(orig or exc).strip()
    reason = said.splitlines()[0] if said else type(exc).__name__
    state = getattr(orig, "sqlstate", None)  # PostgreSQL's error code (psycopg)
    waited = timeout_error(orig or exc, recommender._engine(), lock_timeout=recommender.timeout,
                           setting=SERVING_SETTING, statement_setting=SERVING_SETTING)
    if waited is not None:
        return waited
    if state in ("42P01", "42703") or reason.startswith(("no such table", "no such column")):
        elsewhere = _namespaces_of_recsql(recommender._engine())
        if elsewhere and recommender.schema not in elsewhere:
            return SchemaError(f"{reason}: recsql's tables are in schema {', '.join(elsewhere)}, not on this "
                               f"connection's search_path; pass schema={elsewhere[0]!r} to Recommender")
        return SchemaError(f"{reason}: a table or column serving reads is missing "
                           f"(`recsql db upgrade` sets up recsql's own)")
    if state == "42501":
        return DatabaseUnavailable(f"{reason}: grant the application's role access with "
                                   f"`recsql db grant-reader ROLE` (again after each `recsql db upgrade`)")
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | DisconnectionError):
        return DatabaseUnavailable(f"database error: {reason}")
    return None


def _namespaces_of_recsql(engine: Engine) -> list[str]:
    """The PostgreSQL schemas that hold recsql's tables (its version table), for a
    message: read on a connection of its own; empty if unknown."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'recsql_alembic_version' "
                "ORDER BY table_schema")).scalars())
    except DBAPIError:
        return []


class Recommender:
    """Read recommendations from a database trained by recsql (see module docstring)."""

    MAX_LIMIT = MAX_LIMIT

    def __init__(
        self, bind: Engine | Connection | Session | scoped_session[Any] | str, *, schema: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        """``bind``: an Engine (share the Recommender across threads), a Connection or ORM
        Session (queries and :meth:`save_user` run in its transaction; the caller commits),
        or a database URL (an engine of the Recommender's own, set up like
        :func:`recsql.connect` does and disposed by :meth:`close`).

        ``schema``: recsql's namespace (``--schema`` of the commands), with any bind; on
        PostgreSQL each call puts it on the search_path of the connection it uses and
        restores the connection's own afterwards; on SQLite, where the namespace is a file
        beside the application's, the Recommender opens that file with an engine of its own.
        ``timeout``: seconds each call's queries may run and wait for locks (PostgreSQL's
        statement and lock timeouts, SQLite's busy timeout) before DatabaseUnavailable."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < 1e6:
            raise InvalidParameter(f"timeout is a number of seconds above 0, not {timeout!r}")
        self.timeout = float(timeout)
        self.schema = resolve_schema(schema) if schema is not None else None
        if not isinstance(bind, str | Engine | Connection | Session | scoped_session):
            raise InvalidParameter(
                f"Recommender reads through an Engine, Connection, Session or database URL, not {type(bind).__name__}"
            )
        if self.schema is not None and not isinstance(bind, str) and _bind_engine(bind).dialect.name == "sqlite":
            bind = _bind_engine(bind).url.render_as_string(hide_password=False)  # the namespace is its own file
        owns = isinstance(bind, str)
        if isinstance(bind, str):
            bind = connect(bind, schema=schema, lock_timeout=timeout, statement_timeout=timeout)
        self.bind: Engine | Connection | Session | scoped_session[Any] = bind
        self._owns_bind = owns
        self._active: _Active | None = None
        self._loading = threading.Lock()  # one thread loads a new model; the others wait for it

    @classmethod
    def from_url(
        cls, url: str | None = None, *, schema: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Recommender:
        """A Recommender on its own engine (URL, else ``$RECSQL_DATABASE_URL``; recsql's
        objects in ``schema``, else ``$RECSQL_SCHEMA``); :meth:`close` (or a ``with``
        block) disposes of it."""
        return cls(resolve_url(url), schema=schema, timeout=timeout)

    def close(self) -> None:
        """Drop the loaded model; dispose of the engine if the Recommender made it from a
        URL (an engine, connection or session the caller passed in stays the caller's)."""
        self._active = None
        if self._owns_bind and isinstance(self.bind, Engine):
            self.bind.dispose()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @_database_errors
    def load(self) -> int:
        """Load the active model's movie factors now (otherwise the first call that needs
        them does), e.g. when a web application starts; returns the active model_id."""
        return self._model().info.model_id

    @contextmanager
    def _connection(self, writes: bool = False) -> Iterator[Connection]:
        """The caller's Connection, the Session's (in its transaction, begun if need be),
        or one borrowed from the Engine's pool for the duration; with this Recommender's
        timeouts and namespace in force for the call (an engine of its own has them on
        every connection already)."""
        bind = self.bind
        if isinstance(bind, Connection):
            with self._settings(bind, restore=True, writes=writes) as conn:
                yield conn
        elif isinstance(bind, Session | scoped_session):
            with self._settings(bind.connection(), restore=True, writes=writes) as conn:
                yield conn
        else:
            with bind.connect() as borrowed, self._settings(borrowed, restore=False) as conn:
                yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """Where :meth:`save_user` writes: a transaction of its own, committed here, on an
        Engine; the caller's (who commits or rolls back) on a Connection or Session."""
        if isinstance(self.bind, Engine):
            with self.bind.begin() as begun, self._settings(begun, restore=False, writes=True) as conn:
                yield conn
        else:
            with self._connection(writes=True) as conn:
                yield conn

    @contextmanager
    def _settings(self, conn: Connection, restore: bool, writes: bool = False) -> Iterator[Connection]:
        """The call's timeouts (and namespace) on a lent connection.  SQLite's reads need
        none: in WAL mode nothing blocks them, and a lent connection's own busy timeout
        (Python's sqlite3: 5 s) bounds any other wait."""
        if self._owns_bind or (conn.dialect.name == "sqlite" and not writes):
            yield conn
            return
        wanted = session_settings.serving_settings(conn.dialect.name, self.timeout, self.schema)
        with session_settings.applied(conn, wanted, restore=restore):
            yield conn

    def _engine(self) -> Engine:
        return _bind_engine(self.bind)

    # ------------------------------------------------------------------ application keys

    def _from_keys(self, side: Side, values: Iterable[object]) -> dict[object, object]:
        """Each value as given -> recsql's integer id for the application keys (``str``) among
        them, in one query; other values map to themselves (checked as ids afterwards).
        In a catalogue of text ids a string is a key exactly as given ("7" is the key "7",
        never recsql's movie 7; " a" is not "a"), and a key the catalogue does not know
        maps to None.  In a catalogue of integer ids, digits typed as text (a URL, the
        command line) map to the integer, leading zeros and surrounding spaces allowed
        ("007" and " 7" are 7); any other string maps to None."""
        given = list(values)
        for v in given:
            if not isinstance(v, str):
                _check_id(v, side)  # before any query: a bad id costs nothing
        texts = {v for v in given if isinstance(v, str)}
        if "" in texts:
            raise InvalidParameter(f"a {side} id must not be empty")
        found: dict[str, int] = {}
        if texts:
            with self._connection() as conn:
                found = keys.ids_of(conn, side, sorted(texts))
                digits = {k for k in texts - set(found) if _DIGITS.fullmatch(k.strip())}
                if digits and not keys.has_keys(conn, side):  # an integer catalogue: "3" is id 3
                    found.update({k: int(k.strip()) for k in digits})
        return {v: found.get(v) if isinstance(v, str) else v for v in given}

    def _movie_id(self, value: object) -> int:
        """A movie id, or the application's key of one (UnknownMovie if unknown)."""
        resolved = self._from_keys("movie", [value])[value]
        if resolved is None:
            raise UnknownMovie(value, "is not a movie key of this catalogue")
        return _check_id(resolved, "movie")

    def _user_id(self, value: object) -> int | None:
        """A user id, or the application's key of one (None: a key the catalogue lacks)."""
        resolved = self._from_keys("user", [value])[value]
        return None if resolved is None else _check_id(resolved, "user")

    # ------------------------------------------------------------------ precomputed

    @_database_errors
    def movie(self, movie_id: int | str) -> MovieInfo:
        """The catalogue entry of a movie (title and genres may be unknown: None)."""
        movie_id = self._movie_id(movie_id)
        with self._connection() as conn:
            row = conn.execute(MOVIE_SQL, {"movie_id": movie_id}).first()
        if row is None:
            return MovieInfo(movie_id, None, None)
        return MovieInfo(row.movie_id, row.title, row.genres, row.movie_key)

    @_database_errors
    def similar(self, movie_id: int | str, limit: int = 5) -> list[SimilarMovie]:
        """The ``limit`` movies most similar to ``movie_id`` (recsql's id, or the
        application's key in a catalogue of text ids), best first."""
        limit = _check_limit(limit)
        movie_id = self._movie_id(movie_id)
        return self._similar([movie_id], limit)[movie_id]

    @_database_errors
    def similar_many(
        self, movie_ids: Iterable[int | str], limit: int = 5
    ) -> dict[int | str, list[SimilarMovie]]:
        """:meth:`similar` for several movies (a page that shows them) in one query, keyed
        by movie id in the order given.  Like :meth:`similar`, a movie the active model
        does not know raises UnknownMovie, naming every unknown id: a batch is answered
        whole or not at all, so a typo is never a silently missing key.  Keys given as
        application keys key the answer too."""
        given = _check_batch(movie_ids, "movie")
        limit = _check_limit(limit)
        mapped = self._from_keys("movie", given)
        unknown = [str(v) for v in given if mapped[v] is None]
        if unknown:
            raise UnknownMovie(", ".join(unknown), "is not a movie key of this catalogue")
        answers = self._similar(_check_ids([mapped[v] for v in given], "movie"), limit)
        return {v: answers[_check_id(mapped[v], "movie")] for v in given}

    def _similar(self, movie_ids: list[int], limit: int) -> dict[int, list[SimilarMovie]]:
        found: dict[int, list[SimilarMovie]] = {m: [] for m in movie_ids}
        if not movie_ids:
            return found
        with self._connection() as conn:
            for r in conn.execute(SIMILAR_SQL, {"movie_ids": movie_ids, "limit": limit}):
                found[r.movie_id].append(
                    SimilarMovie(r.rank, r.similar_movie_id, r.similar_title, r.similar_genres, r.score,
                                 r.similar_movie_key)
                )
            listless = [m for m, rows in found.items() if not rows]
            if listless:  # unknown, or known without a list: only then a second query tells which
                model_id = store.active_model_id(conn)
                known = set(conn.execute(KNOWN_MOVIES_SQL, {"m": model_id, "ids": listless}).scalars())
                unknown = [m for m in listless if m not in known]
                if unknown:  # the id itself when there is one, as similar() always raised
                    ids = unknown[0] if len(unknown) == 1 else ", ".join(map(str, unknown))
                    raise UnknownMovie(ids, f"has no ratings in the active model ({model_id})")
        return found

    @_database_errors
    def popular(self, limit: int = 10) -> list[PopularMovie]:
        """The most popular well-rated movies (damped mean), for users with no ratings."""
        return self._popular(_check_limit(limit))

    def _popular(self, limit: int) -> list[PopularMovie]:
        with self._connection() as conn:
            rows = conn.execute(POPULAR_SQL, {"limit": limit}).all()
            if not rows:
                store.active_model_id(conn)
        return [PopularMovie(*r) for r in rows]

    @_database_errors
    def recommend(
        self, user_id: int | str, limit: int = 10, exclude: Iterable[int | str] = ()
    ) -> list[Recommendation]:
        """Top ``limit`` movies for a user, leaving out ``exclude``.

        A user the model knows gets the movies stored with the run (or, when ``exclude``
        removes too many of them, a fresh ranking from the factors); a user with no
        ratings in the model gets the popular movies (``source="popular"``); a user who
        has rated every movie gets an empty list.
        """
        limit = _check_limit(limit)
        excluded = self._excluded(exclude)
        resolved = self._user_id(user_id)
        if resolved is None:
            return self._popular_instead(limit, excluded)  # a key the catalogue has never seen
        user_id = resolved
        with self._connection() as conn:
            rows = conn.execute(RECOMMEND_SQL, {"user_id": user_id, "limit": limit + len(excluded)}).all()
            kept = [r for r in rows if r.movie_id not in excluded]
            if rows and len(kept) >= limit:
                return _numbered(kept[:limit])
            model = store.active_info(conn)
            known = store.count_rows(conn, "user_biases", "user_id", user_id, model.model_id) > 0
            stored = store.count_rows(conn, "user_recommendations", "user_id", user_id, model.model_id)
        if rows and stored == len(rows) and stored < model.recommend_n:
            return _numbered(kept)  # the stored list was every movie the user had not rated
        if not known:
            return self._popular_instead(limit, excluded)
        if not rows:
            return []  # the user has rated every movie (or the run stored no recommendations)
        return self._ranked_from_factors(user_id, limit, excluded)

    @_database_errors
    def recommend_many(
        self, user_ids: Iterable[int | str], limit: int = 10
    ) -> dict[int | str, list[Recommendation]]:
        """:meth:`recommend` for several users (a newsletter batch) in one query, keyed by
        user id in the order given, with the same answers: a user the model does not know
        gets the popular movies, one who rated every movie an empty list.

        Users whose stored list is shorter than ``limit`` cost one more query, together
        (which of them the model knows); new users one more (the popular movies), and
        only a ``limit`` beyond the stored lists' length ranks from the factors, user by
        user, as :meth:`recommend` does.
        """
        given = _check_batch(user_ids, "user")
        limit = _check_limit(limit)
        mapped = self._from_keys("user", given)
        answers = self._recommend_many(_check_ids([m for m in mapped.values() if m is not None], "user"), limit)
        # Users the model does not know (and keys the catalogue lacks) share one popular list.
        popular = functools.cache(lambda: self._popular_instead(limit, set()))
        lists = {v: None if mapped[v] is None else answers[_check_id(mapped[v], "user")] for v in given}
        return {v: popular() if found is None else found for v, found in lists.items()}

    def _recommend_many(self, user_ids: list[int], limit: int) -> dict[int, list[Recommendation] | None]:
        """Each user's list; None for a user the model does not know."""
        found: dict[int, list[Any]] = {u: [] for u in user_ids}
        if not user_ids:
            return {}
        with self._connection() as conn:
            for r in conn.execute(RECOMMEND_MANY_SQL, {"user_ids": user_ids, "limit": limit}):
                found[r.user_id].append(r)
            short = [u for u, rows in found.items() if len(rows) < limit]
            known = set(conn.execute(KNOWN_USERS_SQL, {"ids": short}).scalars()) if short else set[int]()
            stored_n = store.active_info(conn).recommend_n if known else 0
        answers: dict[int, list[Recommendation] | None] = {}
        for user_id, rows in found.items():
            if len(rows) >= limit or (user_id in known and len(rows) < stored_n):
                answers[user_id] = _numbered(rows)  # the stored list, or all the user has not rated
            elif user_id not in known:
                answers[user_id] = None
            else:
                answers[user_id] = self._ranked_from_factors(user_id, limit, set())
        return answers

    def _popular_instead(self, limit: int, excluded: set[int]) -> list[Recommendation]:
        """The popular movies as recommendations, for a user the model does not know."""
        fallback = [p for p in self._popular(limit + len(excluded)) if p.movie_id not in excluded]
        return [Recommendation(i + 1, p.movie_id, p.title, p.genres, p.score, "popular", movie_key=p.movie_key)
                for i, p in enumerate(fallback[:limit])]

    def _ranked_from_factors(self, user_id: int, limit: int, excluded: set[int]) -> list[Recommendation]:
        """A stored user's list ranked afresh, when the stored one is too short."""
        active = self._model()
        user = self._stored_user(user_id, active)
        rated = self._ratings_of(user_id, self._source_of(active.info))
        return self._rank(active, user, set(rated), set(rated) | excluded, limit)

    # ------------------------------------------------------------------ computed

    @_database_errors
    def recommend_for_ratings(
        self, ratings: Mapping[Any, float], limit: int = 10, exclude: Iterable[int | str] = ()
    ) -> list[Recommendation]:
        """Top ``limit`` movies for someone the model has never seen, from a few ratings
        (keyed by movie id, or by the application's keys)."""
        given, limit = self._ratings(ratings), _check_limit(limit)
        excluded = self._excluded(exclude)
        active = self._model()
        folded = self._fold(active, given)
        return self._rank(active, folded.scored_by(active.movies), set(given), set(given) | excluded, limit)

    @_database_errors
    def save_user(
        self, user_id: int, ratings: Mapping[Any, float], limit: int = 10
    ) -> list[Recommendation]:
        """Fold a user in and store their vector and recommendations under the active model,
        so SQL readers see them until the next retrain.  Returns the recommendations."""
        user_id, given, limit = _check_id(user_id, "user"), self._ratings(ratings), _check_limit(limit)
        active = self._model()
        folded = self._fold(active, given)
        recommendations = self._rank(active, folded.scored_by(active.movies), set(given), set(given), limit)
        with self._transaction() as conn:
            store.save_user(
                conn, active.info.model_id, user_id, folded.factors, folded.bias,
                np.array([r.movie_id for r in recommendations], dtype=np.int64),
                np.array([r.predicted_rating for r in recommendations], dtype=np.float64),
                np.array([r.score for r in recommendations], dtype=np.float64),
            )
        return recommendations

    @_database_errors
    def predict(self, user_id: int | str, movie_id: int | str) -> float:
        """The model's rating prediction for a known user and a known movie."""
        user_id, movie_id = self._known_user(user_id), self._movie_id(movie_id)
        active = self._model()
        row = active.rows([movie_id])
        return float(self._stored_user(user_id, active).predict(np.zeros(1, dtype=np.int64), row)[0])

    @_database_errors
    def explain(self, user_id: int | str, movie_id: int | str, limit: int = 5) -> list[Contribution]:
        """The user's rated movies that contributed most to their score for ``movie_id``.

        Uses the fold-in form of the user's vector (their ratings through the model's
        movie factors), whose prediction is exactly a sum of one term per rated movie.
        """
        limit = _check_limit(limit)
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
            Contribution(int(ids[i]), titles.get(int(ids[i]), (None, None, None))[0], float(values[i]),
                         float(share[i]), titles.get(int(ids[i]), (None, None, None))[2])
            for i in order
        ]

    @_database_errors
    def user_ratings(self, user_id: int | str, model_id: int | None = None) -> dict[int, float]:
        """The user's ratings (movie id -> rating, the highest of repeated ones) from where
        model ``model_id`` (default: the active one) read its ratings."""
        user = self._known_user(user_id)
        return self._ratings_of(user, self._source_of(model_id))

    @_database_errors
    def movie_ratings(self, movie_id: int | str, model_id: int | None = None) -> list[float]:
        """Every rating of the movie (repeated ones included) from where model
        ``model_id`` (default: the active one) read its ratings."""
        movie = self._movie_id(movie_id)
        source = self._source_of(model_id)
        if source is None:
            with self._connection() as conn:
                return [float(v) for v in conn.execute(
                    text("SELECT value FROM ratings WHERE movie_id = :m"), {"m": movie}).scalars()]
        return [float(value) for _, _, value in self._source_rows(source, "movie", movie)]

    @_database_errors
    def user_id(self, user_id: int | str) -> int:
        """recsql's integer id of a user: the id itself, or the one of an application's
        key (UnknownUser for a key the catalogue lacks)."""
        return self._known_user(user_id)

    @_database_errors
    def titles(self, movie_ids: Iterable[int]) -> dict[int, MovieInfo]:
        """The catalogue entries of those movies the catalogue (or the key map) has."""
        found = self._titles(np.asarray(list(movie_ids), dtype=np.int64))
        return {movie: MovieInfo(movie, title, genres, key) for movie, (title, genres, key) in found.items()}

    # ------------------------------------------------------------------ internals

    def _known_user(self, value: object) -> int:
        user_id = self._user_id(value)
        if user_id is None:
            raise UnknownUser(value, "is not a user key of this catalogue")
        return user_id

    def _excluded(self, exclude: Iterable[int | str]) -> set[int]:
        given = _check_batch(exclude, "movie", most=None)
        mapped = self._from_keys("movie", given)
        return {_check_id(m, "movie") for m in mapped.values() if m is not None}  # unknown keys: nothing to leave out

    def _ratings(self, ratings: Mapping[Any, float]) -> dict[int, float]:
        """Ratings keyed by movie id or application key, as {movie id: rating}."""
        if isinstance(ratings, Mapping) and any(isinstance(k, str) for k in ratings):
            mapped = self._from_keys("movie", list(ratings))
            unknown = [str(k) for k, m in mapped.items() if m is None]
            if unknown:
                raise UnknownMovie(", ".join(unknown), "is not a movie key of this catalogue")
            ratings = {mapped[k]: v for k, v in ratings.items()}
        return _check_ratings(ratings)

    def _fold(self, active: _Active, ratings: dict[int, float]) -> FoldedUser:
        """The new user's vector, once their ratings are known to be on the model's scale."""
        _check_scale(ratings, active.info)
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
            Recommendation(i + 1, int(m), *titles.get(int(m), (None, None))[:2], float(p), score=float(v),
                           movie_key=titles.get(int(m), (None, None, None))[2])
            for i, (m, p, v) in enumerate(zip(ids[cols], predicted, scores))
        ]

    def _titles(self, movie_ids: np.ndarray) -> dict[int, tuple[str | None, str | None, str | None]]:
        """(title, genres, application key) of the given movies that the catalogue or the
        key map has."""
        if len(movie_ids) == 0:
            return {}
        ids = ", ".join(str(int(m)) for m in movie_ids)
        with self._connection() as conn:
            rows = conn.execute(text(
                f"SELECT i.movie_id, m.title, m.genres, k.movie_key FROM (SELECT movie_id FROM movies "
                f"WHERE movie_id IN ({ids}) UNION SELECT movie_id FROM movie_keys WHERE movie_id IN ({ids})) i "
                "LEFT JOIN movies m ON m.movie_id = i.movie_id LEFT JOIN movie_keys k ON k.movie_id = i.movie_id"
            )).all()
        return {r.movie_id: (r.title, r.genres, r.movie_key) for r in rows}

    def _ratings_of(self, user_id: int, source: Source | None) -> dict[int, float]:
        """The user's ratings (the highest of repeated ones), from where a model read them
        (``source``; None: recsql's ``ratings``)."""
        rows: Sequence[Any]
        if source is None:
            with self._connection() as conn:
                rows = conn.execute(
                    text("SELECT movie_id, MAX(value) AS value FROM ratings WHERE user_id = :u GROUP BY movie_id"),
                    {"u": user_id},
                ).all()
        else:
            rows = [(movie, value) for _, movie, value in self._source_rows(source, "user", user_id)]
            if source.ids == "text":
                with self._connection() as conn:
                    found = keys.ids_of(conn, "movie", [str(m) for m, _ in rows])
                rows = [(found[str(m)], v) for m, v in rows if str(m) in found]
        ratings: dict[int, float] = {}
        for movie, value in rows:
            ratings[int(movie)] = max(float(value), ratings.get(int(movie), float("-inf")))
        return ratings

    def _source_rows(self, source: Source, side: Side, value: int) -> list[Any]:
        """The (user, movie, rating) rows of one user or movie (``side``, recsql's id
        ``value``) in the application's tables, keys as the source has them."""
        key: int | str = value
        if source.ids == "text":  # the source knows it by its key
            with self._connection() as conn:
                key = keys.keys_of(conn, side, np.array([value])).get(value, "")
        # The application's query runs read-only whichever way recsql was called: on a
        # connection of its own (a host's transaction may already have written, and
        # can no longer be made read-only), rolled back, within this call's timeout.
        with reading(self._engine(), source, timeout=self.timeout) as own:
            sql = text(source.ratings_sql(own, user_filter=side == "user", movie_filter=side == "movie"))
            return list(own.execute(sql, {f"{side}_id": key}))

    def _source_of(self, model: int | store.ModelInfo | None) -> Source | None:
        """Where a model (its id or record; default: the active one) read its ratings: the
        mapping is read from ``models`` only for a model trained from a source (a reader
        role, which may not read ``models``, serves the others)."""
        with self._connection() as conn:
            info = store.active_info(conn) if model is None else model
            if isinstance(info, store.ModelInfo) and not info.from_source:
                return None
            return store.get_model(conn, info if isinstance(info, int) else info.model_id).source

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


MOVIE_SQL = text(
    "SELECT m.movie_id, m.title, m.genres, k.movie_key FROM movies m "
    "LEFT JOIN movie_keys k ON k.movie_id = m.movie_id WHERE m.movie_id = :movie_id"
)
# Stored lists are ranked 1, 2, 3, ... per movie and per user, so ``rank <= :limit``
# is each one's first ``limit`` rows: one query for any number of ids.
SIMILAR_SQL = text(
    "SELECT movie_id, rank, similar_movie_id, similar_title, similar_genres, score, similar_movie_key "
    "FROM similar_movies WHERE movie_id IN :movie_ids AND rank <= :limit ORDER BY movie_id, rank"
).bindparams(bindparam("movie_ids", expanding=True))
RECOMMEND_MANY_SQL = text(
    "SELECT user_id, rank, movie_id, title, genres, predicted_rating, score, movie_key "
    "FROM recommended_movies WHERE user_id IN :user_ids AND rank <= :limit ORDER BY user_id, rank"
).bindparams(bindparam("user_ids", expanding=True))
KNOWN_MOVIES_SQL = text(
    "SELECT movie_id FROM movie_biases WHERE model_id = :m AND movie_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
KNOWN_USERS_SQL = text(
    "SELECT b.user_id FROM user_biases b JOIN active_model a ON a.model_id = b.model_id "
    "WHERE b.user_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
RECOMMEND_SQL = text(
    "SELECT rank, movie_id, title, genres, predicted_rating, score, movie_key "
    "FROM recommended_movies WHERE user_id = :user_id ORDER BY rank LIMIT :limit"
)
POPULAR_SQL = text(
    "SELECT rank, movie_id, title, genres, score, n_ratings, mean_rating, movie_key "
    "FROM popular_movies ORDER BY rank LIMIT :limit"
)


def _bind_engine(bind: Engine | Connection | Session | scoped_session[Any]) -> Engine:
    if isinstance(bind, Session | scoped_session):
        return bind.get_bind().engine
    return bind.engine


def _numbered(rows: Sequence[Any]) -> list[Recommendation]:
    return [Recommendation(i + 1, r.movie_id, r.title, r.genres, r.predicted_rating, score=r.score,
                           movie_key=r.movie_key) for i, r in enumerate(rows)]


# ---------------------------------------------------------------------- checking arguments


def _is_int(value: object) -> TypeGuard[int]:
    """An int, or a numpy integer; never a bool (True is not movie 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_id(value: object, what: str) -> int:
    """A movie or user id as an int: no string (the web layer converts), no float, no bool."""
    if not _is_int(value) or not _INT64[0] <= int(value) <= _INT64[1]:
        raise InvalidParameter(f"a {what} id must be a whole number (64-bit), not {value!r}")
    return int(value)


def _check_ids(values: Iterable[object], what: str, most: int | None = MAX_LIMIT) -> list[int]:
    """Ids in the order given, each once; at most ``most`` of them (None: any number)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidParameter(f"{what} ids must be a list of whole numbers, not {values!r}")
    ids = list(dict.fromkeys(_check_id(v, what) for v in values))
    if most is not None and len(ids) > most:
        raise InvalidParameter(f"at most {most} {what} ids at a time, not {len(ids)}")
    return ids


def _check_batch(values: object, what: str, most: int | None = MAX_LIMIT) -> list[Any]:
    """A batch of ids or application keys, each once, in the order given."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidParameter(f"{what} ids must be a list, not {values!r}")
    given = list(dict.fromkeys(values))
    if most is not None and len(given) > most:
        raise InvalidParameter(f"at most {most} {what} ids at a time, not {len(given)}")
    return given


_DIGITS = re.compile(r"-?[0-9]+")


def _check_limit(limit: object) -> int:
    if not _is_int(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return int(limit)


def _check_ratings(ratings: Mapping[int, float]) -> dict[int, float]:
    """{movie id: rating} with int ids and finite ratings (the scale is checked once the
    active model is known: :func:`_check_scale`)."""
    if not isinstance(ratings, Mapping):
        raise InvalidParameter(f"ratings must map movie ids to ratings, not {type(ratings).__name__}")
    if not ratings:
        raise InvalidParameter("give at least one (movie, rating) pair")
    checked: dict[int, float] = {}
    for movie, value in ratings.items():
        movie_id = _check_id(movie, "movie")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise InvalidParameter(f"the rating of movie {movie_id} must be a finite number, not {value!r}")
        checked[movie_id] = float(value)
    return checked


def _check_scale(ratings: dict[int, float], info: store.ModelInfo) -> None:
    """Ratings off the model's scale (a 50 on a 1-5 scale) would fold in a user unlike any
    it was trained on; a model trained without a scale takes any finite rating."""
    if info.clip is None:
        return
    low, high = info.clip
    off = [f"{movie}: {value:g}" for movie, value in ratings.items() if not low <= value <= high]
    if off:
        raise InvalidParameter(
            f"ratings must be from {low:g} to {high:g}, the active model's scale ({info.model_id}); "
            f"off it: {', '.join(off)}"
        )

"""A model in memory, for a notebook: ``recsql.fit`` on a DataFrame, then predictions,
recommendations and similar movies as DataFrames, with no database; ``save`` stores it
as a new model version, ``recsql.load_model`` reads one back.

It takes the same steps as ``recsql train`` (:mod:`recsql.evaluation.run`: the rating
model, the item model, the lists) on the same options, so a model fitted here from the
ratings a database holds is the model a retrain of that database stores, and saved it
is the version a retrain would have written (:func:`recsql.train.save_model`).

    import recsql
    model = recsql.fit(ratings)                    # user_id, movie_id, value (or rating)
    model.predict([1, 2], [50, 99999])             # unknown ids: the mean, known=False
    model.recommend([1, 2], n=5)
    model.similar([50], k=5)
    model.save("sqlite:///shop.db")                # the active model of the views
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sqlalchemy import Connection, Engine

from recsql import store
from recsql.algorithms.factors import Factors
from recsql.algorithms.foldin import fold_in
from recsql.algorithms.fresh import rank_fresh, similar_scores
from recsql.algorithms.outputs import ModelOutputs, Recommended, relabeled
from recsql.algorithms.ranking import rated_by
from recsql.data.frames import Keys, Side, as_values, integer_ids, parse_frame, read_frame
from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.db import keys
from recsql.db.catalogue import stored_scale
from recsql.db.migrate import connect
from recsql.errors import InvalidParameter
from recsql.evaluation.run import Fitted, listed, run_metrics, stored_outputs
from recsql.evaluation.run import fit as fit_steps
from recsql.options import FitOptions
from recsql.progress import Phases
from recsql.serving.checks import check_ratings
from recsql.threads import using_threads
from recsql.train import TrainOptions, run_settings, save_model


@dataclass(frozen=True)
class Model:
    """A model version in memory: what ``recsql train`` stores (``outputs``: factors and
    lists; its ``params`` and ``metrics`` as the run's record holds them) and, when it
    was fitted here, the fit itself (``fitted``; None for a model read back by
    :func:`load_model`, whose ``model_id`` it keeps)."""

    outputs: ModelOutputs
    algorithm: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    fitted: Fitted | None = None
    model_id: int | None = None
    keys: Keys | None = None  # text ids: the keys the integers stand for (None: integer ids)

    @property
    def user_ids(self) -> np.ndarray:
        return self.outputs.factors.user_ids

    @property
    def movie_ids(self) -> np.ndarray:
        return self.outputs.factors.movie_ids

    def _ids(self, side: Side, given: Any) -> np.ndarray:
        """The integers of ids as a caller gives them (keys, for a model of text ids)."""
        if self.keys is not None:
            return self.keys.ids(side, given)
        return integer_ids(given, f"{side} ids")

    def _shown(self, side: Side, ids: np.ndarray) -> np.ndarray:
        """Integers as the caller knows them: the keys, for a model of text ids."""
        return ids if self.keys is None else self.keys.keys(side, ids)

    def predict(self, users: Any, movies: Any = None, *, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Predicted ratings of (user, movie) pairs, one row each, in order: two arrays
        (or ids), or one DataFrame of pairs (its user and movie columns named as for
        :func:`fit`; a held-out test frame as it is).  A pair with an id the model has
        not seen gets the ratings' mean and ``known`` False."""
        if movies is None:
            if not isinstance(users, pd.DataFrame):
                raise InvalidParameter("give the pairs' users and movies, or one DataFrame of pairs")
            names = {"user": "user_id", "movie": "movie_id", **(columns or {})}
            missing = [names[role] for role in ("user", "movie") if names[role] not in users]
            if missing:
                raise InvalidParameter(f"the pairs have no column {', '.join(missing)}")
            users, movies = users[names["user"]], users[names["movie"]]
        user_ids, movie_ids = self._ids("user", users), self._ids("movie", movies)
        if len(user_ids) != len(movie_ids):
            raise InvalidParameter(f"{len(user_ids)} users but {len(movie_ids)} movies: give one of each per pair")
        rows, known_user = lookup_ids(self.user_ids, user_ids)
        cols, known_movie = lookup_ids(self.movie_ids, movie_ids)
        known = known_user & known_movie
        factors = self.outputs.factors
        predicted = np.full(len(user_ids), factors.global_mean, dtype=np.float64)
        predicted[known] = factors.predict(rows[known], cols[known])
        return pd.DataFrame(
            {
                "user_id": as_values(users) if self.keys is not None else user_ids,
                "movie_id": as_values(movies) if self.keys is not None else movie_ids,
                "predicted_rating": predicted,
                "known": known,
            }
        )

    def recommend(self, users: Any, n: int = store.DEFAULT_RECOMMEND_N, exclude_rated: bool = True) -> pd.DataFrame:
        """Each known user's top ``n``: user_id, rank (1 = best), movie_id, the score that
        orders them and the predicted rating.  Up to the stored ``recommend_n`` (10) they
        are the stored lists (fewer for a user who has rated nearly every movie); a longer
        list, or one that may hold movies the user rated (``exclude_rated`` False), is
        ranked on the spot as :class:`recsql.Recommender` ranks it
        (:mod:`recsql.algorithms.fresh`), from the ratings of a model fitted here."""
        if n < 1:
            raise InvalidParameter(f"n must be at least 1, not {n}")
        rows, known = lookup_ids(self.user_ids, self._ids("user", users))
        rows = rows[known]
        recommended = self.outputs.recommended
        if exclude_rated and n <= recommended.indices.shape[1]:
            return self._listed(self._shown("user", self.user_ids[rows]), recommended, rows, n)
        rated = self._rated("a list longer than the stored one, or with rated movies,")
        skip = rated if exclude_rated else sp.csr_matrix(rated.shape)
        fresh = rank_fresh(self.outputs.factors, self._lends, rated, skip, n, users=rows)
        return self._listed(self._shown("user", self.user_ids[rows]), fresh, np.arange(len(rows)), n)

    def recommend_for_ratings(
        self,
        ratings: Mapping[int, float] | pd.DataFrame,
        n: int = store.DEFAULT_RECOMMEND_N,
        *,
        columns: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Top ``n`` movies for people the model has never seen, from a few ratings each:
        ``{movie_id: rating}`` for one person, or a DataFrame of (user, movie, rating)
        rows (``columns`` mapped as for :func:`fit`) for several.  Each is folded in
        (:func:`recsql.algorithms.foldin.fold_in`) and ranked as ``Recommender`` ranks a
        new user; movies the model does not know are passed over, and a person with no
        known movie gets the popular ones (``source`` "popular").  Columns: user_id (the
        DataFrame's ids; -1 for a single person), rank, movie_id, score,
        predicted_rating, source."""
        if n < 1:
            raise InvalidParameter(f"n must be at least 1, not {n}")
        if isinstance(ratings, Mapping):
            given = dict(ratings) if self.keys is not None else check_ratings(ratings)
            ratings = pd.DataFrame({"user_id": -1, "movie_id": list(given), "value": list(given.values())})
            columns = None
        parsed = parse_frame(ratings, columns)
        person_codes, persons = pd.factorize(pd.Series(parsed.users))  # whoever they are, in order
        matrix = RatingMatrix.from_triples(person_codes, self._ids("movie", parsed.movies), parsed.values)
        factors = self.outputs.factors
        if factors.clip is not None:
            low, high = factors.clip
            off = matrix.values[(matrix.values < low) | (matrix.values > high)]
            if len(off):
                raise InvalidParameter(
                    f"ratings must be from {low:g} to {high:g}, the model's scale; off it: {off[0]:g}"
                )
        cols, known = lookup_ids(self.movie_ids, matrix.movie_ids[matrix.cols])
        rated = sp.csr_matrix(
            (np.ones(int(known.sum())), (matrix.rows[known], cols[known])), shape=(matrix.n_users, len(self.movie_ids))
        )
        # The cells are sorted by person, so each person's known movies are one slice.
        owners, cols, values = matrix.rows[known], cols[known], matrix.values[known]
        bounds = np.searchsorted(owners, np.arange(matrix.n_users + 1))
        people = np.flatnonzero(np.diff(bounds) > 0)
        answers = []
        if len(people):
            folded = [
                fold_in(factors, cols[bounds[u] : bounds[u + 1]], values[bounds[u] : bounds[u + 1]]) for u in people
            ]
            vectors = np.array([f.factors for f in folded])
            biases = np.array([f.bias for f in folded])
            scored = factors.with_users(matrix.user_ids[people], vectors, biases)
            fresh = rank_fresh(scored, self._lends, rated[people], rated[people], n)
            named = np.asarray(persons)[matrix.user_ids[people]]
            answers.append(self._listed(named, fresh, np.arange(len(people)), n).assign(source="model"))
        newcomers = np.setdiff1d(np.arange(matrix.n_users), people)
        if len(newcomers):
            answers.append(self._popular(np.asarray(persons)[matrix.user_ids[newcomers]], n))
        return pd.concat(answers, ignore_index=True) if len(answers) > 1 else answers[0]

    def _listed(self, user_ids: np.ndarray, lists: Recommended, rows: np.ndarray, n: int) -> pd.DataFrame:
        """Rows ``rows`` of ranked lists, one line per listed movie, the users named ``user_ids``."""
        picks = lists.indices[rows, :n]
        filled = picks >= 0
        return pd.DataFrame(
            {
                "user_id": np.broadcast_to(np.asarray(user_ids)[:, None], picks.shape)[filled],
                "rank": np.broadcast_to(np.arange(1, picks.shape[1] + 1), picks.shape)[filled],
                "movie_id": self._shown("movie", self.movie_ids[picks[filled]]),
                "score": lists.scores[rows, :n][filled],
                "predicted_rating": lists.predicted[rows, :n][filled],
            }
        )

    def _popular(self, user_ids: np.ndarray, n: int) -> pd.DataFrame:
        """The stored popular movies, for each of ``user_ids``."""
        top = self.outputs.popular
        k = min(n, len(top.movie_index))
        return pd.DataFrame(
            {
                "user_id": np.repeat(user_ids, k),
                "rank": np.tile(np.arange(1, k + 1), len(user_ids)),
                "movie_id": np.tile(self._shown("movie", self.movie_ids[top.movie_index[:k]]), len(user_ids)),
                "score": np.tile(top.score[:k], len(user_ids)),
                "predicted_rating": np.nan,
                "source": "popular",
            }
        )

    def _rated(self, what: str) -> sp.csr_matrix:
        """Who rated what, in the model's rows and columns: known only to a model fitted here."""
        if self.fitted is None:
            raise InvalidParameter(
                f"{what} needs the ratings the model was fitted on; a model read from a database keeps only "
                "its stored lists (up to recommend_n per user, rated movies left out)"
            )
        return self._rated_pattern

    @cached_property
    def _rated_pattern(self) -> sp.csr_matrix:
        assert self.fitted is not None
        return rated_by(self.fitted.matrix.csr)

    @cached_property
    def _lends(self) -> sp.csr_matrix | None:
        """The stored similar lists as the choice a fresh ranking sums (None: lists by rating)."""
        if self.params.get("metric") != "items":
            return None
        return similar_scores(self.outputs.similar, len(self.movie_ids))

    def similar(self, movies: Any, k: int | None = None) -> pd.DataFrame:
        """Each known movie's ``k`` (default: all stored, ``similar_k``) most similar
        movies: movie_id, rank (1 = most similar), similar_movie_id and score."""
        similar = self.outputs.similar
        k = similar.indices.shape[1] if k is None else k
        if k < 1:
            raise InvalidParameter(f"k must be at least 1, not {k}")
        rows, known = lookup_ids(self.movie_ids, self._ids("movie", movies))
        picks = similar.indices[rows[known], :k]
        filled = picks >= 0  # a list read back from a database may be shorter than k
        return pd.DataFrame(
            {
                "movie_id": self._shown(
                    "movie", np.broadcast_to(self.movie_ids[rows[known]][:, None], picks.shape)[filled]
                ),
                "rank": np.broadcast_to(np.arange(1, picks.shape[1] + 1), picks.shape)[filled],
                "similar_movie_id": self._shown("movie", self.movie_ids[picks[filled]]),
                "score": similar.scores[rows[known], :k][filled],
            }
        )

    def lists(self) -> dict[str, pd.DataFrame]:
        """The stored lists, as the tables ``movie_similarities``, ``user_recommendations``
        and ``movie_popularity`` hold them (without the model_id column)."""
        sides: dict[str, Side] = {"user_id": "user", "movie_id": "movie", "similar_movie_id": "movie"}
        return {
            table: pd.DataFrame(
                {
                    name: self._shown(sides[name], column) if name in sides else column
                    for name, column in rows.items()
                    if name != "model_id"
                }
            )
            for table, rows in store.list_rows(0, self.outputs).items()
        }

    def save(
        self,
        database: Engine | str,
        *,
        activate: bool = True,
        wait: float = 0.0,
        keep: int = store.DEFAULT_KEEP,
    ) -> int:
        """Store this model in a recsql database (an Engine or a URL) as a new version,
        written as ``recsql train`` writes one, and make it the active one (unless
        ``activate`` is False: ``recsql models activate ID`` does it later).  The
        database's ratings are not touched; answers that read a user's ratings
        (``Recommender.explain``) read the database's.  Returns the new model_id.

        Refused, with nothing written, when the database's rating scale is not the
        model's (fit with ``rating_scale`` set to it) or its catalogue maps text ids."""
        with _engine(database) as engine:
            outputs = self._outputs_for(engine)
            return save_model(
                engine,
                outputs,
                self.algorithm,
                self.params,
                self.metrics,
                self.timings,
                activate=activate,
                wait=wait,
                keep=keep,
            )

    def _outputs_for(self, engine: Engine) -> ModelOutputs:
        """What this model writes into ``engine``'s database: its outputs, under the
        database's integers for its keys (new keys are stored, as an import stores them);
        a database whose ratings it cannot stand for is refused."""
        with engine.connect() as conn:
            scale, kind = stored_scale(conn), keys.stored_id_kind(conn)
        if kind == "text" and self.keys is None:
            raise InvalidParameter(
                "this database's catalogue maps text ids to integers; a model fitted in memory on integer ids "
                "would not join its keys"
            )
        if kind == "integer" and self.keys is not None:
            raise InvalidParameter(
                "this database's catalogue has integer ids; a model fitted on text ids is saved into a catalogue "
                "of text ids, or an empty database"
            )
        clip = self.outputs.factors.clip
        if scale is not None and clip is not None and tuple(clip) != tuple(scale):
            raise InvalidParameter(
                f"this database's ratings are on the scale {scale[0]:g} to {scale[1]:g} but the model predicts "
                f"{clip[0]:g} to {clip[1]:g}: fit it with rating_scale=({scale[0]:g}, {scale[1]:g})"
            )
        if self.keys is None:
            return self.outputs
        with engine.begin() as conn:
            users = keys.integer_ids(conn, "user", self.keys.keys("user", self.user_ids))
            movies = keys.integer_ids(conn, "movie", self.keys.keys("movie", self.movie_ids))
        return relabeled(self.outputs, users, movies)


def fit(
    ratings: pd.DataFrame,
    options: FitOptions | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    rating_scale: tuple[float, float] | None = None,
    **given: Any,
) -> Model:
    """Fit recsql's model and lists to ratings in memory: a DataFrame, an Arrow table or
    three arrays (users, movies, ratings), with integer or text ids.

    ``columns`` names the frame's user, movie and rating columns as ``--columns`` does
    (``{"user": "userId", "movie": "movieId", "rating": "rating"}``; default
    user_id, movie_id and value, or rating); ``rating_scale`` bounds the predictions
    (default: the ratings' own lowest and highest, as a first import sets a database's
    scale); ``given``: :class:`FitOptions` by name, over ``options``, with the defaults
    ``recsql train`` uses."""
    fit_options = FitOptions.given(options, given)
    options = TrainOptions(**{f.name: getattr(fit_options, f.name) for f in fields(FitOptions)})
    backend = options.backend_of()
    given_ratings = read_frame(ratings, columns, options.duplicates)
    matrix = given_ratings.matrix
    if rating_scale is not None:
        rating_scale = _checked_scale(rating_scale, matrix.values)
    lists = options.lists()
    plan = backend.solver.plan(matrix.n_users, matrix.n_movies, matrix.nnz)
    params = {**backend.params(), "plan": plan, **run_settings(options, None)}
    with using_threads(options.threads), backend.session(None) as compute:
        phase = Phases()
        fitted = fit_steps(compute, matrix, None, lists, phase, backend.steps(), scale=rating_scale)
        out = listed(compute, fitted, lists, phase)
        metrics = run_metrics(fitted, lists, out, phase)
    if fitted.items is not None:  # what the item model chose completes the params, as in a retrain
        params.update(fitted.items.facts())
    return Model(
        stored_outputs(fitted, out),
        backend.solver.name,
        params,
        metrics,
        phase.timings,
        fitted,
        keys=given_ratings.keys,
    )


def _checked_scale(scale: tuple[float, float], values: np.ndarray) -> tuple[float, float]:
    low, high = (float(v) for v in scale)
    if not low < high:
        raise InvalidParameter(f"rating_scale must be (low, high) with low < high, not {scale}")
    if values.min() < low or values.max() > high:
        raise InvalidParameter(
            f"the ratings run {values.min():g} to {values.max():g}, outside rating_scale ({low:g}, {high:g})"
        )
    return (low, high)


def load_model(database: Engine | str, model_id: int | None = None) -> Model:
    """A stored model version (default: the active one) in memory, to predict, list and
    compare in a notebook as a fitted one, or to save into another database."""
    with _engine(database) as engine, engine.connect() as conn:
        info = (
            store.get_model(conn, store.active_model_id(conn))
            if model_id is None
            else store.complete_model(conn, model_id, "loaded")
        )
        factors = store.load_factors(conn, info)
        similar, recommended, popular = store.load_lists(conn, info, factors)
        mapped = _stored_keys(conn, factors) if keys.stored_id_kind(conn) == "text" else None
    outputs = ModelOutputs(factors, similar, recommended, popular, n_ratings=int(info.n_ratings or 0))
    return Model(
        outputs, info.algorithm, info.params, info.metrics or {}, info.timings or {}, None, info.model_id, mapped
    )


@contextmanager
def _engine(database: Engine | str) -> Iterator[Engine]:
    """The caller's Engine, or one made for a URL (its schema checked) and disposed after."""
    if not isinstance(database, str):
        yield database
        return
    engine = connect(database)
    try:
        yield engine
    finally:
        engine.dispose()


def _stored_keys(conn: Connection, factors: Factors) -> Keys:
    """A text catalogue's keys of a stored model's users and movies."""
    sides = []
    wanted: tuple[tuple[Side, np.ndarray], ...] = (("user", factors.user_ids), ("movie", factors.movie_ids))
    for side, ids in wanted:
        known_ids, known_keys = keys.all_keys(conn, side)
        at, found = lookup_ids(known_ids, ids)
        if not found.all():
            raise InvalidParameter(f"{int((~found).sum())} of the model's {side}s have no key in this catalogue")
        sides.append(known_keys[at])
    return Keys(factors.user_ids, sides[0], factors.movie_ids, sides[1])


__all__ = ["Model", "fit", "load_model"]

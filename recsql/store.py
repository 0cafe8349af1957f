"""Model versions in the database: save one, load one, list them, make one active.

A model version's life: :func:`start` commits a ``running`` row in ``models`` (so admins
see it at once); :func:`save_outputs` writes every output row under its ``model_id`` and
marks it ``ready``; :func:`activate` makes it the active model in one short transaction
(retiring the previous one), which is the moment every view switches.  :func:`fail`
records the error; a failed version never had its rows committed and never becomes
active.

This module is the only one that knows how a model is laid out in tables (long-format
features, biases, ranked lists): :func:`save_outputs` encodes it and
:func:`load_movie_factors` / :func:`load_user` decode it.  Callers get
:class:`ModelInfo` records and :class:`~recsql.model.factors.Factors`, never ORM rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)

from recsql.data.matrix import lookup_ids
from recsql.data.source import Source
from recsql.db import bulk
from recsql.db.lock import WriterLock, lock_is_free, writer_lock
from recsql.db.tables import (
    ACTIVE,
    FAILED,
    PRUNED,
    PRUNING,
    READY,
    RETIRED,
    RUNNING,
    Model,
    UserBias,
    UserFeature,
    UserRecommendation,
)
from recsql.errors import InvalidParameter, LockLost, NoActiveModel, UnknownModel
from recsql.model.factors import Factors
from recsql.model.outputs import ModelOutputs
from recsql.progress import Step, no_step
from recsql.threads import thread_count

log = logging.getLogger(__name__)

# Recommendations stored per user when a run does not say (runs made before it did).
DEFAULT_RECOMMEND_N = 10

OUTPUT_TABLES = (
    "user_features", "movie_features", "user_biases", "movie_biases",
    "movie_similarities", "user_recommendations", "movie_popularity",
)


@dataclass(frozen=True)
class ModelInfo:
    """One model version as stored in ``models`` (its settings typed, not JSON keys)."""

    model_id: int
    status: str
    algorithm: str
    created_at: datetime
    finished_at: datetime | None
    activated_at: datetime | None
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    timings: dict[str, Any] | None
    n_users: int | None
    n_movies: int | None
    n_ratings: int | None
    error: str | None
    global_mean: float | None
    rating_min: float | None
    rating_max: float | None
    # Trained from the application's tables (``params`` of a record read through the
    # ``active_model`` view, as readers see it, leave the mapping out).
    from_source: bool = False

    @property
    def recommend_n(self) -> int:
        """How many recommendations per user this version stored."""
        return int(self.params.get("recommend_n", DEFAULT_RECOMMEND_N))

    @property
    def source(self) -> Source | None:
        """The application tables it was trained from (None: recsql's ``ratings``)."""
        return Source.from_params(self.params.get("source"))

    @property
    def lists(self) -> str:
        """What ordered its stored lists: ``items`` (``--metric items``: the item-item model
        blended with the ratings) or ``ratings`` (the rating model alone, as every version
        before ``items`` did)."""
        return "items" if self.params.get("metric") == "items" else "ratings"

    @property
    def stored_features(self) -> int | None:
        """How many features per user and movie its tables hold (the Bayesian model
        stores more than ``params["features"]``: its averaged predictor compressed)."""
        stored = (self.metrics or {}).get("stored_features")
        return int(stored) if stored is not None else self.params.get("features")

    @property
    def clip(self) -> tuple[float, float] | None:
        """The rating scale its predictions are clipped to (None: unclipped)."""
        if self.rating_min is None or self.rating_max is None:
            return None
        return (self.rating_min, self.rating_max)


def _info(row: Any) -> ModelInfo:
    values = dict(row._mapping)
    values["model_id"] = values.pop("id")
    values["from_source"] = (values.get("params") or {}).get("source") is not None
    names = {f.name for f in fields(ModelInfo)}
    return ModelInfo(**{k: v for k, v in values.items() if k in names})


# The view serving reads the active model through: what a reader role may see of it
# (migration 0010: no source mapping, no error), typed so JSON and times decode alike.
ACTIVE_MODEL_VIEW = Table(
    "active_model", MetaData(),
    Column("model_id", Integer), Column("created_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)), Column("activated_at", DateTime(timezone=True)),
    Column("algorithm", String), Column("params", JSON), Column("metrics", JSON), Column("timings", JSON),
    Column("n_users", Integer), Column("n_movies", Integer), Column("n_ratings", BigInteger),
    Column("global_mean", Float), Column("rating_min", Float), Column("rating_max", Float),
    Column("from_source", Boolean),
)


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- listing, lookup


DEAD = "dead"  # shown, never stored: running or ready while no process holds the writer lock


def list_models(engine: Engine) -> list[ModelInfo]:
    """Every model version, newest first.  A run still marked running (or ready) while
    no process holds the writer lock died; it is listed as ``dead`` (and reclaimed by
    the next writer)."""
    with engine.connect() as conn:
        infos = [_info(r) for r in conn.execute(select(Model.__table__).order_by(Model.id.desc())).all()]
    if any(i.status in (RUNNING, READY) for i in infos) and lock_is_free(engine):
        infos = [replace(i, status=DEAD) if i.status in (RUNNING, READY) else i for i in infos]
    return infos


def running_description(engine: Engine) -> str:
    """Which model the current writer is building, for a "busy" message."""
    with engine.connect() as conn:
        row = conn.execute(
            select(Model.id, Model.created_at).where(Model.status.in_((RUNNING, READY))).order_by(Model.id.desc())
        ).first()
    return f"model {row.id}, started {row.created_at:%Y-%m-%d %H:%M:%S}" if row else ""


def reclaim_dead(engine: Engine, lock: WriterLock) -> list[int]:
    """For the holder of the writer ``lock``: runs left ``running`` or ``ready`` belong to
    processes that died (killed, crashed) or lost the lock; they are marked failed and
    their rows deleted.  Returns their ids."""
    with engine.connect() as conn:
        dead = list(conn.execute(select(Model.id).where(Model.status.in_((RUNNING, READY)))).scalars())
    for model_id in dead:
        with engine.begin() as conn:
            lock.check(conn)
            # Failed first: a writer that lost its lock can no longer mark it ready or active.
            conn.execute(update(Model).where(Model.id == model_id, Model.status.in_((RUNNING, READY))).values(
                status=FAILED, finished_at=_now(),
                error="its process stopped before it finished (killed or crashed, or it lost the writer lock); "
                      "found by the next writer",
            ))
        discard_outputs(engine, model_id)
        log.warning("model %d: its process stopped before it finished; its rows are deleted, marked failed", model_id)
    return dead


def complete_model(conn: Connection, model_id: int, what: str) -> ModelInfo:
    """A version whose output rows exist (ready, active or retired), or UnknownModel /
    InvalidParameter saying why ``what`` (e.g. "inspected") cannot use it."""
    model = get_model(conn, model_id)
    if model.status not in COMPLETE:
        raise InvalidParameter(f"model {model_id} is {model.status}: it stores no lists to be {what}; "
                               "see `recsql models` for the complete ones")
    return model


def active_model_id(conn: Connection) -> int:
    """The active model's id, or :class:`NoActiveModel` (read through the ``active_model``
    view, as a reader role may)."""
    model_id = conn.execute(select(ACTIVE_MODEL_VIEW.c.model_id)).scalar()
    if model_id is None:
        raise NoActiveModel("no model has been trained yet; run `recsql train`")
    return model_id


def active_info(conn: Connection) -> ModelInfo:
    """The active model's record as serving needs it, through the ``active_model`` view
    (a reader role may read nothing else of ``models``), or :class:`NoActiveModel`."""
    row = conn.execute(select(ACTIVE_MODEL_VIEW)).first()
    if row is None:
        raise NoActiveModel("no model has been trained yet; run `recsql train`")
    values = dict(row._mapping)
    return ModelInfo(status=ACTIVE, error=None, **{**values, "from_source": bool(values["from_source"])})


def get_model(conn: Connection, model_id: int) -> ModelInfo:
    """One model version's record, or :class:`UnknownModel`."""
    row = conn.execute(select(Model.__table__).where(Model.id == model_id)).first()
    if row is None:
        raise UnknownModel(model_id)
    return _info(row)


def show_model(engine: Engine, model_id: int) -> ModelInfo:
    """One model version's record (parameters, metrics, timings, counts, error)."""
    with engine.connect() as conn:
        return get_model(conn, model_id)


def count_rows(conn: Connection, table: str, column: str, value: int, model_id: int) -> int:
    """How many rows of one of a model's output tables belong to one user or movie."""
    if table not in OUTPUT_TABLES or column not in ("user_id", "movie_id"):
        raise ValueError(f"not an output table column: {table}.{column}")
    return conn.execute(
        text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m AND {column} = :v"), {"m": model_id, "v": value}
    ).scalar_one()


# ---------------------------------------------------------------------- saving a version


def start(engine: Engine, algorithm: str, params: dict[str, Any], lock: WriterLock) -> int:
    """Commit a ``running`` row for a new model version; returns its model_id."""
    with engine.begin() as conn:
        lock.check(conn)
        return conn.execute(
            insert(Model)
            .values(created_at=_now(), status=RUNNING, algorithm=algorithm, params=params)
            .returning(Model.id)
        ).scalar_one()


def _output_rows(model_id: int, outputs: ModelOutputs) -> dict[str, dict[str, np.ndarray]]:
    """Every output table's rows for this version, column-wise (long format)."""
    factors = outputs.factors
    tables: dict[str, dict[str, np.ndarray]] = {}
    for table, key, ids, values in (
        ("user_features", "user_id", factors.user_ids, factors.user_factors),
        ("movie_features", "movie_id", factors.movie_ids, factors.movie_factors),
    ):
        n, k = values.shape
        tables[table] = {
            "model_id": np.full(n * k, model_id, dtype=np.int64),
            key: np.repeat(ids, k),
            "feature": np.tile(np.arange(k, dtype=np.int64), n),
            "value": values.ravel(),
        }
    for table, key, ids, bias in (
        ("user_biases", "user_id", factors.user_ids, factors.user_bias_or_zero),
        ("movie_biases", "movie_id", factors.movie_ids, factors.movie_bias_or_zero),
    ):
        tables[table] = {"model_id": np.full(len(ids), model_id, dtype=np.int64), key: ids, "bias": bias}
    n, k = outputs.similar.indices.shape
    tables["movie_similarities"] = {
        "model_id": np.full(n * k, model_id, dtype=np.int64),
        "movie_id": np.repeat(factors.movie_ids, k),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n),
        "similar_movie_id": factors.movie_ids[outputs.similar.indices].ravel(),
        "score": outputs.similar.scores.ravel(),
    }
    n, k = outputs.recommended.indices.shape
    filled = outputs.recommended.indices.ravel() >= 0
    tables["user_recommendations"] = {
        "model_id": np.full(int(filled.sum()), model_id, dtype=np.int64),
        "user_id": np.repeat(factors.user_ids, k)[filled],
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n)[filled],
        "movie_id": factors.movie_ids[outputs.recommended.indices.ravel()[filled]],
        "predicted_rating": outputs.recommended.predicted.ravel()[filled],
        "score": outputs.recommended.scores.ravel()[filled],
    }
    top = outputs.popular
    tables["movie_popularity"] = {
        "model_id": np.full(len(top.movie_index), model_id, dtype=np.int64),
        "rank": np.arange(1, len(top.movie_index) + 1, dtype=np.int64),
        "movie_id": factors.movie_ids[top.movie_index],
        "score": top.score,
        "n_ratings": top.n_ratings.astype(np.int64),
        "mean_rating": top.mean_rating,
    }
    return tables


def save_outputs(
    engine: Engine,
    model_id: int,
    outputs: ModelOutputs,
    *,
    metrics: dict[str, Any],
    timings: dict[str, float],
    lock: WriterLock,
    step: Step = no_step,
) -> None:
    """Write every output row under ``model_id``, then mark the version ready.

    SQLite writes all tables in one transaction.  PostgreSQL writes them in parallel,
    two connections at a time, each table in its own transaction: the rows are
    invisible to the views until activation whatever happens, and if a write fails the
    rows already written under ``model_id`` are deleted before the error goes on.
    Every transaction checks the writer ``lock`` is still held before it commits.
    """
    tables = _output_rows(model_id, outputs)
    if engine.dialect.name == "postgresql":
        def write(table: str) -> None:
            with engine.begin() as conn:
                lock.check(conn)
                bulk.insert_columns(conn, table, tables[table])

        try:
            # Progress is counted here, in the thread that receives signals; a signal
            # lets the tables in flight finish, then everything written is deleted.
            with ThreadPoolExecutor(max_workers=max(1, min(len(OUTPUT_TABLES), thread_count()))) as pool:
                try:
                    for done in as_completed([pool.submit(write, table) for table in OUTPUT_TABLES]):
                        done.result()
                        step(1)
                except BaseException:
                    pool.shutdown(cancel_futures=True)  # tables not yet started never start
                    raise
        except BaseException as exc:
            _without_masking(exc, "deleting its rows", lambda: discard_outputs(engine, model_id))
            raise
        with engine.begin() as conn:
            lock.check(conn)
            _mark_ready(conn, model_id, outputs, metrics, timings)
        return
    with engine.begin() as conn:
        lock.check(conn)
        for table in OUTPUT_TABLES:
            bulk.insert_columns(conn, table, tables[table])
            step(1)
        _mark_ready(conn, model_id, outputs, metrics, timings)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None (JSON's null): a metric that
    cannot be computed (diversity with no list of two movies) is stored as unknown, and
    PostgreSQL's json type refuses the NaN that Python's json module writes."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _mark_ready(
    conn: Connection, model_id: int, outputs: ModelOutputs, metrics: dict[str, Any], timings: dict[str, float]
) -> None:
    factors = outputs.factors
    marked = conn.execute(
        update(Model)
        .where(Model.id == model_id, Model.status == RUNNING)
        .values(
            status=READY,
            finished_at=_now(),
            metrics=json_safe(metrics),
            timings=timings,
            n_users=len(factors.user_ids),
            n_movies=len(factors.movie_ids),
            n_ratings=outputs.n_ratings,
            global_mean=factors.global_mean,
            rating_min=factors.clip[0] if factors.clip else None,
            rating_max=factors.clip[1] if factors.clip else None,
        )
    ).rowcount
    if not marked:  # another writer found it dead: this process had lost the lock
        raise LockLost(f"model {model_id} was marked failed by another writer while it was written; "
                       "it will not become ready or active")


# A model whose rows are all there and were never discarded: it can be (re)activated.
COMPLETE = (READY, ACTIVE, RETIRED)
DEFAULT_KEEP = 3
PRUNE_BATCH = 50_000


def discard_outputs(engine: Engine, model_id: int, batch: int = PRUNE_BATCH) -> None:
    """Delete every output row of a version that is not active (a failed, dead or pruned
    one), ``batch`` rows per short transaction, so readers of the views never wait on a
    long delete and an interrupted delete loses nothing but time."""
    row = "ctid" if engine.dialect.name == "postgresql" else "rowid"
    for table in OUTPUT_TABLES:
        while True:
            with engine.begin() as conn:
                deleted = conn.execute(text(
                    f"DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE model_id = :m LIMIT :n)"
                ), {"m": model_id, "n": batch}).rowcount
            if deleted < batch:
                break


def activate_model(engine: Engine, model_id: int, wait: float = 0.0) -> None:
    """Make ``model_id`` the one active model: a new version that is ready, or an earlier
    one that was retired (a rollback), holding the writer lock (``wait`` seconds for it)."""
    with writer_lock(engine, wait, holder=lambda: running_description(engine)) as lock:
        switch_active(engine, model_id, lock)


def switch_active(engine: Engine, model_id: int, lock: WriterLock) -> None:
    """The activation itself, for the holder of the writer ``lock``: one short
    transaction of two UPDATEs, the moment every view switches.  The transaction checks
    that the lock is still held and locks the version's row first, so a writer that
    lost its lock never activates, and a run another writer marked failed stays failed."""
    with engine.begin() as conn:
        lock.check(conn)
        status = conn.execute(select(Model.status).where(Model.id == model_id).with_for_update()).scalar()
        if status is None:
            raise UnknownModel(model_id)
        if status not in COMPLETE:
            raise InvalidParameter(
                f"model {model_id} is {status}; only a complete model (ready, active or retired) can be activated"
            )
        if status == ACTIVE:
            return
        conn.execute(update(Model).where(Model.status == ACTIVE).values(status=RETIRED))
        conn.execute(update(Model).where(Model.id == model_id).values(status=ACTIVE, activated_at=_now()))


def output_counts(engine: Engine, model_id: int) -> dict[str, int]:
    """How many rows each output table holds for a model (what ``models show`` prints)."""
    with engine.connect() as conn:
        get_model(conn, model_id)
        return {
            table: conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE model_id = :m"), {"m": model_id}).scalar_one()
            for table in OUTPUT_TABLES
        }


def prune_models(engine: Engine, keep: int = DEFAULT_KEEP, batch: int = PRUNE_BATCH, wait: float = 0.0) -> list[int]:
    """:func:`prune`, holding the writer lock (``wait`` seconds for it); dead runs are
    reclaimed first (:func:`reclaim_dead`), so they are pruned too."""
    with writer_lock(engine, wait, holder=lambda: running_description(engine)) as lock:
        reclaim_dead(engine, lock)
        return prune(engine, lock, keep, batch)


def prune(engine: Engine, lock: WriterLock, keep: int = DEFAULT_KEEP, batch: int = PRUNE_BATCH) -> list[int]:
    """Delete the output rows of failed models and of all but the ``keep`` newest complete
    ones (the active model is always kept); returns the pruned model ids.

    Their ``models`` rows stay, marked ``pruned``, as history.  Each is marked
    ``pruning`` before its rows go (:func:`discard_outputs`), so it cannot be activated
    meanwhile, and a prune that was interrupted is finished by the next one.  Running and
    ready models are left alone.  The caller holds the writer ``lock``.
    """
    if keep < 1:
        raise InvalidParameter(f"keep must be at least 1 (the active model), not {keep}")
    with engine.connect() as conn:
        versions = conn.execute(select(Model.id, Model.status).order_by(Model.id.desc())).all()
    active = [v.id for v in versions if v.status == ACTIVE]
    retired = [v.id for v in versions if v.status == RETIRED]
    kept = set(active) | set(retired[: max(0, keep - len(active))])
    doomed = []
    for version in versions:
        if (version.status == RETIRED and version.id not in kept) or version.status == FAILED:
            with engine.begin() as conn:
                lock.check(conn)
                marked = conn.execute(
                    update(Model).where(Model.id == version.id, Model.status == version.status).values(status=PRUNING)
                ).rowcount
            if marked:
                doomed.append(version.id)
    unfinished = [v.id for v in versions if v.status == PRUNING]
    for model_id in unfinished + doomed:
        discard_outputs(engine, model_id, batch)
        with engine.begin() as conn:
            conn.execute(update(Model).where(Model.id == model_id).values(status=PRUNED))
    if unfinished or doomed:
        reclaim_space(engine)
        log.info("pruned the rows of models %s", ", ".join(map(str, unfinished + doomed)))
    return doomed


def reclaim_space(engine: Engine) -> None:
    """PostgreSQL: VACUUM the output tables, so the next retrain writes into the space the
    pruned rows left instead of growing the tables (autovacuum wakes once a minute and
    may not have run between two retrains).  VACUUM does not block readers.  SQLite
    reuses freed pages by itself."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {', '.join(OUTPUT_TABLES)}"))


def record_timings(engine: Engine, model_id: int, timings: dict[str, float]) -> None:
    """Store the final per-phase timings (write and activate end after the version's rows)."""
    with engine.begin() as conn:
        conn.execute(update(Model).where(Model.id == model_id).values(timings=timings))


def fail(engine: Engine, model_id: int, error: BaseException) -> None:
    """Mark a version failed, with the error's text.

    Called while ``error`` is on its way up: if marking fails too (the database that
    broke the write is still broken), ``error`` stays the one raised and recorded in
    its notes, and the run is left to be reclaimed as dead by the next writer.
    """
    message = str(error) or type(error).__name__

    def mark() -> None:
        with engine.begin() as conn:  # unless another writer has settled it (found it dead)
            conn.execute(
                update(Model)
                .where(Model.id == model_id, Model.status.in_((RUNNING, READY)))
                .values(status=FAILED, finished_at=_now(), error=message[:2000])
            )

    _without_masking(error, "marking it failed", mark)
    log.info("model %d marked failed: %s", model_id, message)  # the caller reports the error itself


def _without_masking(error: BaseException, what: str, cleanup: Callable[[], None]) -> None:
    """Run a cleanup after ``error``; a second failure is noted on ``error``, never raised."""
    try:
        cleanup()
    except Exception as second:  # noqa: BLE001 - the original error is the one that matters
        error.add_note(f"recsql: {what} also failed: {type(second).__name__}: {second}")


# ---------------------------------------------------------------------- loading a version


def load_movie_factors(conn: Connection, model: ModelInfo) -> Factors:
    """A stored version's movie side (factors, biases, mean, scale) as Factors with no
    users: serving adds the one user it scores (:meth:`Factors.with_users`)."""
    movies, features, values = bulk.read_columns(
        conn, f"SELECT movie_id, feature, value FROM movie_features WHERE model_id = {int(model.model_id)}"
    )
    bias_ids, biases = bulk.read_columns(
        conn, f"SELECT movie_id, bias FROM movie_biases WHERE model_id = {int(model.model_id)}", "if"
    )
    movie_ids = np.unique(movies)
    movie_factors = np.zeros((len(movie_ids), int(features.max()) + 1 if len(features) else 0))
    movie_factors[lookup_ids(movie_ids, movies)[0], features] = values
    movie_bias = np.zeros(len(movie_ids))
    rows, known = lookup_ids(movie_ids, bias_ids)
    movie_bias[rows[known]] = biases[known]
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


def save_user(
    conn: Connection,
    model_id: int,
    user_id: int,
    vector: np.ndarray,
    bias: float,
    recommended_ids: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
) -> None:
    """Store (or replace) one user's vector, bias and recommendations under a version,
    inside the caller's transaction."""
    for table in (UserFeature, UserBias, UserRecommendation):
        conn.execute(delete(table).where(table.model_id == model_id, table.user_id == user_id))
    k, n = len(vector), len(recommended_ids)
    bulk.insert_columns(conn, "user_features", {
        "model_id": np.full(k, model_id), "user_id": np.full(k, user_id),
        "feature": np.arange(k), "value": vector,
    })
    bulk.insert_columns(conn, "user_biases", {"model_id": [model_id], "user_id": [user_id], "bias": [bias]})
    bulk.insert_columns(conn, "user_recommendations", {
        "model_id": np.full(n, model_id), "user_id": np.full(n, user_id),
        "rank": np.arange(1, n + 1, dtype=np.int64),
        "movie_id": np.asarray(recommended_ids, dtype=np.int64),
        "predicted_rating": np.asarray(predicted, dtype=np.float64),
        "score": np.asarray(scores, dtype=np.float64),
    })

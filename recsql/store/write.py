"""The output tables' write side: a model version's rows encoded and written, or deleted.

This module is the one that knows how a model is laid out in tables when it is written
(long-format features, biases, ranked lists; :mod:`.read` decodes the same layout):
:func:`save_outputs` writes a whole version and marks it ready, :func:`save_user` one
folded-in user, :func:`discard_outputs` deletes a version's rows in short batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, text, update

from recsql.algorithms.outputs import ModelOutputs
from recsql.db import bulk
from recsql.db.lock import WriterLock
from recsql.db.tables import READY, RUNNING, Model, UserBias, UserFeature, UserRecommendation
from recsql.errors import LockLost
from recsql.progress import Step, no_step
from recsql.store.models import OUTPUT_TABLES
from recsql.threads import thread_count

PRUNE_BATCH = 50_000


def now() -> datetime:
    """The time stamps of ``models`` rows: aware, in UTC."""
    return datetime.now(UTC)


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
    tables.update(list_rows(model_id, outputs))
    return tables


def list_rows(model_id: int, outputs: ModelOutputs) -> dict[str, dict[str, np.ndarray]]:
    """The ranked lists' rows (similar movies, recommendations, popular movies)."""
    movie_ids = outputs.factors.movie_ids
    n, k = outputs.similar.indices.shape
    tables: dict[str, dict[str, np.ndarray]] = {}
    tables["movie_similarities"] = {
        "model_id": np.full(n * k, model_id, dtype=np.int64),
        "movie_id": np.repeat(movie_ids, k),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n),
        "similar_movie_id": movie_ids[outputs.similar.indices].ravel(),
        "score": outputs.similar.scores.ravel(),
    }
    n, k = outputs.recommended.indices.shape
    filled = outputs.recommended.indices.ravel() >= 0
    tables["user_recommendations"] = {
        "model_id": np.full(int(filled.sum()), model_id, dtype=np.int64),
        "user_id": np.repeat(outputs.factors.user_ids, k)[filled],
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n)[filled],
        "movie_id": movie_ids[outputs.recommended.indices.ravel()[filled]],
        "predicted_rating": outputs.recommended.predicted.ravel()[filled],
        "score": outputs.recommended.scores.ravel()[filled],
    }
    top = outputs.popular
    tables["movie_popularity"] = {
        "model_id": np.full(len(top.movie_index), model_id, dtype=np.int64),
        "rank": np.arange(1, len(top.movie_index) + 1, dtype=np.int64),
        "movie_id": movie_ids[top.movie_index],
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
    params: dict[str, Any] | None = None,
    step: Step = no_step,
) -> None:
    """Write every output row under ``model_id``, then mark the version ready (with the
    run's ``params`` completed by what the fit chose, if given).

    SQLite writes all tables in one transaction.  PostgreSQL writes them in parallel,
    two connections at a time, each table in its own transaction: the rows are
    invisible to the views until activation whatever happens, and if a write fails the
    rows already written under ``model_id`` are deleted before the error goes on.
    Every transaction checks the writer ``lock`` is still held before it commits.
    """
    tables = _output_rows(model_id, outputs)
    if engine.dialect.name == "postgresql":
        _write_in_parallel(engine, model_id, tables, lock, step)
        with engine.begin() as conn:
            lock.check(conn)
            _mark_ready(conn, model_id, outputs, metrics, timings, params)
        return
    with engine.begin() as conn:
        lock.check(conn)
        for table in OUTPUT_TABLES:
            bulk.insert_columns(conn, table, tables[table])
            step(1)
        _mark_ready(conn, model_id, outputs, metrics, timings, params)


def _write_in_parallel(
    engine: Engine, model_id: int, tables: dict[str, dict[str, np.ndarray]], lock: WriterLock, step: Step
) -> None:
    """PostgreSQL: each table in a transaction of its own, on a few connections at once;
    on any failure every row written under ``model_id`` is deleted before it goes on."""

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
        without_masking(exc, "deleting its rows", lambda: discard_outputs(engine, model_id))
        raise


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
    conn: Connection,
    model_id: int,
    outputs: ModelOutputs,
    metrics: dict[str, Any],
    timings: dict[str, float],
    params: dict[str, Any] | None,
) -> None:
    factors = outputs.factors
    chosen = {} if params is None else {"params": json_safe(params)}
    marked = conn.execute(
        update(Model)
        .where(Model.id == model_id, Model.status == RUNNING)
        .values(
            **chosen,
            status=READY,
            finished_at=now(),
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
        raise LockLost(
            f"model {model_id} was marked failed by another writer while it was written; "
            "it will not become ready or active"
        )


def discard_outputs(engine: Engine, model_id: int, batch: int = PRUNE_BATCH) -> None:
    """Delete every output row of a version that is not active (a failed, dead or pruned
    one), ``batch`` rows per short transaction, so readers of the views never wait on a
    long delete and an interrupted delete loses nothing but time."""
    row = "ctid" if engine.dialect.name == "postgresql" else "rowid"
    for table in OUTPUT_TABLES:
        while True:
            with engine.begin() as conn:
                deleted = conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE model_id = :m LIMIT :n)"
                    ),
                    {"m": model_id, "n": batch},
                ).rowcount
            if deleted < batch:
                break


def without_masking(error: BaseException, what: str, cleanup: Callable[[], None]) -> None:
    """Run a cleanup after ``error``; a second failure is noted on ``error``, never raised."""
    try:
        cleanup()
    except Exception as second:  # noqa: BLE001 - the original error is the one that matters
        error.add_note(f"recsql: {what} also failed: {type(second).__name__}: {second}")


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
    bulk.insert_columns(
        conn,
        "user_features",
        {
            "model_id": np.full(k, model_id),
            "user_id": np.full(k, user_id),
            "feature": np.arange(k),
            "value": vector,
        },
    )
    bulk.insert_columns(conn, "user_biases", {"model_id": [model_id], "user_id": [user_id], "bias": [bias]})
    bulk.insert_columns(
        conn,
        "user_recommendations",
        {
            "model_id": np.full(n, model_id),
            "user_id": np.full(n, user_id),
            "rank": np.arange(1, n + 1, dtype=np.int64),
            "movie_id": np.asarray(recommended_ids, dtype=np.int64),
            "predicted_rating": np.asarray(predicted, dtype=np.float64),
            "score": np.asarray(scores, dtype=np.float64),
        },
    )

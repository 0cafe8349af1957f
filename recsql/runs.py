"""Training runs in the ``models`` table, and the bulk write of a run's outputs.

A run's life: :func:`start` commits a ``running`` row (so admins see it at once);
:func:`write_outputs` writes every output row under the run's id and marks it ``ready``; :func:`activate` makes it the active run in one short transaction
(retiring the previous one), which is the moment every view switches.  :func:`fail`
records the error; a failed run never had its rows committed and never becomes active.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, text, update

from recsql import db
from recsql.factorize import Factors
from recsql.progress import Step, no_step
from recsql.models import ACTIVE, FAILED, READY, RETIRED, RUNNING, ModelRun


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start(engine: Engine, algorithm: str, params: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return conn.execute(
            insert(ModelRun)
            .values(created_at=_now(), status=RUNNING, algorithm=algorithm, params=params)
            .returning(ModelRun.id)
        ).scalar_one()


@dataclass(frozen=True)
class RunOutputs:
    """Everything a run writes besides its ``models`` row."""

    factors: Factors
    similar_indices: np.ndarray  # n_movies x K, indices into factors.movie_ids
    similar_scores: np.ndarray
    recommended_indices: np.ndarray  # n_users x N, indices into factors.movie_ids; -1: none
    recommended_scores: np.ndarray
    popular: dict[str, np.ndarray]  # from recsql.neighbors.popular


OUTPUT_TABLES = (
    "user_features", "movie_features", "user_biases", "movie_biases",
    "movie_similarities", "user_recommendations", "movie_popularity",
)


def _output_rows(run_id: int, outputs: RunOutputs) -> dict[str, dict[str, np.ndarray]]:
    """Every output table's rows for this run, column-wise (long format)."""
    factors = outputs.factors
    tables: dict[str, dict[str, np.ndarray]] = {}
    for table, key, ids, values in (
        ("user_features", "user_id", factors.user_ids, factors.user_factors),
        ("movie_features", "movie_id", factors.movie_ids, factors.movie_factors),
    ):
        n, k = values.shape
        tables[table] = {
            "model_id": np.full(n * k, run_id, dtype=np.int64),
            key: np.repeat(ids, k),
            "feature": np.tile(np.arange(k, dtype=np.int64), n),
            "value": values.ravel(),
        }
    for table, key, ids, bias in (
        ("user_biases", "user_id", factors.user_ids, factors.user_bias),
        ("movie_biases", "movie_id", factors.movie_ids, factors.movie_bias),
    ):
        tables[table] = {
            "model_id": np.full(len(ids), run_id, dtype=np.int64),
            key: ids,
            "bias": np.zeros(len(ids)) if bias is None else bias,
        }
    n, k = outputs.similar_indices.shape
    tables["movie_similarities"] = {
        "model_id": np.full(n * k, run_id, dtype=np.int64),
        "movie_id": np.repeat(factors.movie_ids, k),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n),
        "similar_movie_id": factors.movie_ids[outputs.similar_indices].ravel(),
        "score": outputs.similar_scores.ravel(),
    }
    n, k = outputs.recommended_indices.shape
    filled = outputs.recommended_indices.ravel() >= 0
    tables["user_recommendations"] = {
        "model_id": np.full(int(filled.sum()), run_id, dtype=np.int64),
        "user_id": np.repeat(factors.user_ids, k)[filled],
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n)[filled],
        "movie_id": factors.movie_ids[outputs.recommended_indices.ravel()[filled]],
        "predicted_rating": outputs.recommended_scores.ravel()[filled],
    }
    top = outputs.popular
    tables["movie_popularity"] = {
        "model_id": np.full(len(top["movie_index"]), run_id, dtype=np.int64),
        "rank": np.arange(1, len(top["movie_index"]) + 1, dtype=np.int64),
        "movie_id": factors.movie_ids[top["movie_index"]],
        "score": top["score"],
        "n_ratings": top["n_ratings"].astype(np.int64),
        "mean_rating": top["mean_rating"],
    }
    return tables


def write_outputs(
    engine: Engine,
    run_id: int,
    outputs: RunOutputs,
    *,
    metrics: dict[str, Any],
    timings: dict[str, float],
    n_ratings: int,
    step: Step = no_step,
) -> None:
    """Write every output row under ``run_id``, then mark the run ready.

    SQLite writes all tables in one transaction.  PostgreSQL writes them in parallel,
    two connections at a time, each table in its own transaction: the rows are
    invisible to the views until activation whatever happens, and if a write fails the
    rows already written under ``run_id`` are deleted before the error goes on.
    """
    tables = _output_rows(run_id, outputs)
    if engine.dialect.name == "postgresql":
        def write(table: str) -> None:
            with engine.begin() as conn:
                db.insert_columns(conn, table, tables[table])
            step(1)

        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(write, OUTPUT_TABLES))
        except BaseException:
            discard_outputs(engine, run_id)
            raise
        with engine.begin() as conn:
            _mark_ready(conn, run_id, outputs.factors, metrics, timings, n_ratings)
        return
    with engine.begin() as conn:
        for table in OUTPUT_TABLES:
            db.insert_columns(conn, table, tables[table])
            step(1)
        _mark_ready(conn, run_id, outputs.factors, metrics, timings, n_ratings)


def _mark_ready(conn, run_id: int, factors: Factors, metrics, timings, n_ratings: int) -> None:
    conn.execute(
        update(ModelRun)
        .where(ModelRun.id == run_id)
        .values(
            status=READY,
            finished_at=_now(),
            metrics=metrics,
            timings=timings,
            n_users=len(factors.user_ids),
            n_movies=len(factors.movie_ids),
            n_ratings=n_ratings,
            global_mean=factors.global_mean,
            rating_min=factors.clip[0] if factors.clip else None,
            rating_max=factors.clip[1] if factors.clip else None,
        )
    )


def discard_outputs(engine: Engine, run_id: int) -> None:
    """Delete whatever rows a run managed to write (its outputs never became visible)."""
    with engine.begin() as conn:
        for table in OUTPUT_TABLES:
            conn.execute(text(f"DELETE FROM {table} WHERE model_id = :run_id"), {"run_id": run_id})


def activate(engine: Engine, run_id: int) -> None:
    """Make ``run_id`` the one active run: a single short transaction of two UPDATEs."""
    with engine.begin() as conn:
        conn.execute(update(ModelRun).where(ModelRun.status == ACTIVE).values(status=RETIRED))
        conn.execute(
            update(ModelRun)
            .where(ModelRun.id == run_id, ModelRun.status == READY)
            .values(status=ACTIVE, activated_at=_now())
        )


def record_timings(engine: Engine, run_id: int, timings: dict[str, float]) -> None:
    """Store the final per-phase timings (write and activate end after the run's rows)."""
    with engine.begin() as conn:
        conn.execute(update(ModelRun).where(ModelRun.id == run_id).values(timings=timings))


def fail(engine: Engine, run_id: int, error: BaseException) -> None:
    message = str(error) or type(error).__name__
    with engine.begin() as conn:
        conn.execute(
            update(ModelRun)
            .where(ModelRun.id == run_id)
            .values(status=FAILED, finished_at=_now(), error=message[:2000])
        )

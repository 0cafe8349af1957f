"""A model version's life in ``models``: started, failed, reclaimed, activated, pruned.

:func:`start` commits a ``running`` row (so admins see it at once); the rows written
under it (:func:`recsql.store.write.save_outputs`) mark it ``ready``; :func:`switch_active`
makes it the active model in one short transaction (retiring the previous one), which
is the moment every view switches.  :func:`fail` records the error; a failed version
never had its rows committed and never becomes active.  :func:`prune` deletes the rows
of versions no longer kept.  Every change is made by the holder of the writer lock,
and checks that it still holds it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, insert, select, text, update

from recsql.db.lock import WriterLock, writer_lock
from recsql.db.tables import ACTIVE, FAILED, PRUNED, PRUNING, READY, RETIRED, RUNNING, Model
from recsql.errors import InvalidParameter, UnknownModel
from recsql.store.models import COMPLETE, OUTPUT_TABLES, running_description
from recsql.store.split import Split, end_running, running_split
from recsql.store.write import PRUNE_BATCH, discard_outputs, now, without_masking

log = logging.getLogger(__name__)

DEFAULT_KEEP = 3


def start(engine: Engine, algorithm: str, params: dict[str, Any], lock: WriterLock) -> int:
    """Commit a ``running`` row for a new model version; returns its model_id."""
    with engine.begin() as conn:
        lock.check(conn)
        return conn.execute(
            insert(Model)
            .values(created_at=now(), status=RUNNING, algorithm=algorithm, params=params)
            .returning(Model.id)
        ).scalar_one()


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
                .values(status=FAILED, finished_at=now(), error=message[:2000])
            )

    without_masking(error, "marking it failed", mark)
    log.info("model %d marked failed: %s", model_id, message)  # the caller reports the error itself


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
            conn.execute(
                update(Model)
                .where(Model.id == model_id, Model.status.in_((RUNNING, READY)))
                .values(
                    status=FAILED,
                    finished_at=now(),
                    error="its process stopped before it finished (killed or crashed, or it lost the writer lock); "
                    "found by the next writer",
                )
            )
        discard_outputs(engine, model_id)
        log.warning("model %d: its process stopped before it finished; its rows are deleted, marked failed", model_id)
    return dead


def activate_model(engine: Engine, model_id: int, wait: float = 0.0) -> Split | None:
    """Make ``model_id`` the one active model: a new version that is ready, or an earlier
    one that was retired (a rollback), holding the writer lock (``wait`` seconds for it).
    Ends a running traffic split, which it returns (None when none ran)."""
    with writer_lock(engine, wait, holder=lambda: running_description(engine)) as lock:
        return switch_active(engine, model_id, lock)


def switch_active(engine: Engine, model_id: int, lock: WriterLock) -> Split | None:
    """The activation itself, for the holder of the writer ``lock``: one short
    transaction of two UPDATEs, the moment every view switches.  The transaction checks
    that the lock is still held and locks the version's row first, so a writer that
    lost its lock never activates, and a run another writer marked failed stays failed.
    A running traffic split ends in the same transaction (every user gets the new
    model at once); it is returned, ended."""
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
            return None
        ended = end_running(conn, f"model {model_id} was activated")
        conn.execute(update(Model).where(Model.status == ACTIVE).values(status=RETIRED))
        conn.execute(update(Model).where(Model.id == model_id).values(status=ACTIVE, activated_at=now()))
        return ended


def shelve(engine: Engine, model_id: int, lock: WriterLock) -> None:
    """A ready version kept without activating it (:meth:`recsql.Model.save` with
    ``activate=False``): marked retired, a complete version no writer holds (a ready one
    would be taken for a dead run), which ``recsql models activate`` switches to; its
    empty ``activated_at`` tells it was never active."""
    with engine.begin() as conn:
        lock.check(conn)
        conn.execute(update(Model).where(Model.id == model_id, Model.status == READY).values(status=RETIRED))


def record_timings(engine: Engine, model_id: int, timings: dict[str, float]) -> None:
    """Store the final per-phase timings (write and activate end after the version's rows)."""
    with engine.begin() as conn:
        conn.execute(update(Model).where(Model.id == model_id).values(timings=timings))


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
    ready models are left alone, and so is the model B of a running traffic split.  The
    caller holds the writer ``lock``.
    """
    if keep < 1:
        raise InvalidParameter(f"keep must be at least 1 (the active model), not {keep}")
    with engine.connect() as conn:
        versions = conn.execute(select(Model.id, Model.status).order_by(Model.id.desc())).all()
        split = running_split(conn)
    active = [v.id for v in versions if v.status == ACTIVE] + ([split.model_b] if split else [])
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

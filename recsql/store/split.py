"""Traffic splits between two model versions (``model_splits``) and who gets which.

While a split runs, the ``recommended_movies`` view serves a user from model B when
their bucket (:func:`buckets`: the id times the split's multiplier modulo the prime
2^31 - 1, modulo :data:`BUCKETS`) is below the split's share of :data:`BUCKETS`, and
from the active model A otherwise.  The multiplier is a power of a primitive root
taken from B's id (:func:`multiplier_of`): a wider share for the same B keeps every
user B had, and another experiment draws its own users (an additive salt would only
rotate the buckets, and the same users would land in every experiment's B).  The assignment is a
pure function of the user id and the split, the same in Python and in both databases'
SQL (migration 0011 writes it there), so it is stable across requests, processes and
restarts, and needs no table of users.  Every change is made by the holder of the
writer lock: one split at a time, and an activation (:func:`end_running`, called in
the activation's own transaction) ends it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update

from recsql.db.lock import writer_lock
from recsql.db.tables import ACTIVE, RETIRED, ModelSplit
from recsql.db.tables import Model as ModelRow
from recsql.errors import InvalidParameter, UnknownModel
from recsql.store.models import running_description
from recsql.store.write import now

log = logging.getLogger(__name__)

BUCKETS = 10_000
"""A share is kept to 1/10,000 of the users."""
_PRIME = 2_147_483_647  # 2^31 - 1
_ROOT = 950_706_376  # a primitive root modulo 2^31 - 1


def multiplier_of(model_b: int) -> int:
    """A split's hash multiplier: the primitive root 950,706,376 (Fishman and Moore's) to
    the power of B's id, modulo 2^31 - 1; every such power is below 2^31."""
    return pow(_ROOT, int(model_b), _PRIME)


def buckets(user_ids: Any, multiplier: int) -> np.ndarray:
    """Each user's bucket in 0..9,999 under ``multiplier``: the views' SQL exactly
    (C-style ``%``, which keeps the sign, then ``ABS``; every product below 2^62)."""
    users = np.asarray(user_ids, dtype=np.int64)
    return ((np.abs(np.fmod(users, _PRIME)) + 1) * int(multiplier) % _PRIME % BUCKETS).astype(np.int64)


@dataclass(frozen=True)
class Split:
    """One traffic split: users with a bucket below ``share`` x 10,000 get model B."""

    split_id: int
    model_a: int
    model_b: int
    share: float
    multiplier: int
    started_at: datetime
    ended_at: datetime | None
    ended_by: str | None

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def variants(self, user_ids: Any) -> np.ndarray:
        """``"B"`` for the users this split sends to model B, else ``"A"`` (which users B
        knows is not checked: the view serves a user B has no list for from A)."""
        inside = buckets(user_ids, self.multiplier) < round(self.share * BUCKETS)
        return np.where(inside, "B", "A")


_SPLITS = ModelSplit.__table__  # read as rows of columns (a Core connection gives no ORM objects)


def _split(row: Any) -> Split:
    return Split(
        row.id,
        row.model_a,
        row.model_b,
        row.buckets / BUCKETS,
        row.multiplier,
        row.started_at,
        row.ended_at,
        row.ended_by,
    )


def running_split(conn: Connection) -> Split | None:
    """The split running now, if any."""
    row = conn.execute(select(_SPLITS).where(ModelSplit.ended_at.is_(None)).order_by(ModelSplit.id.desc())).first()
    return _split(row) if row else None


def list_splits(engine: Engine) -> list[Split]:
    """Every split, newest first (ended ones are the online metrics' history)."""
    with engine.connect() as conn:
        return [_split(s) for s in conn.execute(select(_SPLITS).order_by(ModelSplit.id.desc()))]


def end_running(conn: Connection, reason: str) -> Split | None:
    """End the running split inside the caller's transaction (whose caller holds the
    writer lock); returns it, ended, or None when none ran."""
    running = running_split(conn)
    if running is None:
        return None
    ended_at = now()
    conn.execute(update(ModelSplit).where(ModelSplit.id == running.split_id).values(ended_at=ended_at, ended_by=reason))
    log.info("ended the traffic split of model %d and model %d: %s", running.model_a, running.model_b, reason)
    return replace(running, ended_at=ended_at, ended_by=reason)


def split_traffic(engine: Engine, model_a: int, model_b: int, share: float, wait: float = 0.0) -> Split:
    """Serve ``share`` of the users (by a stable hash of their id) from model ``model_b``
    and the rest from ``model_a``, which must be the active model, through the same
    views; replaces a split already running.  Holds the writer lock (``wait`` seconds)."""
    if not 0 < share < 1 or round(share * BUCKETS) in (0, BUCKETS):
        raise InvalidParameter(f"share is the part of the users that model B serves, between 0 and 1; not {share}")
    if model_a == model_b:
        raise InvalidParameter("a split needs two different models")
    with writer_lock(engine, wait, holder=lambda: running_description(engine)) as lock:
        with engine.begin() as conn:
            lock.check(conn)
            status = dict(
                conn.execute(
                    select(ModelRow.id, ModelRow.status).where(ModelRow.id.in_((model_a, model_b))).with_for_update()
                ).all()
            )
            for model_id in (model_a, model_b):
                if model_id not in status:
                    raise UnknownModel(model_id)
            if status[model_a] != ACTIVE:
                raise InvalidParameter(
                    f"model {model_a} is {status[model_a]}: a split runs beside the active model; "
                    f"activate it first (recsql models activate {model_a}), or name the active model as A"
                )
            if status[model_b] != RETIRED:  # (a ready one is a dead run's: no writer holds the lock but us)
                raise InvalidParameter(
                    f"model {model_b} is {status[model_b]}; only a complete model that is not active (retired, "
                    "e.g. trained with --no-activate) can serve a split"
                )
            replaced = running_split(conn)
            started = now()
            split_id = conn.execute(
                insert(ModelSplit)
                .values(
                    model_a=model_a,
                    model_b=model_b,
                    buckets=round(share * BUCKETS),
                    multiplier=multiplier_of(model_b),
                    started_at=started,
                )
                .returning(ModelSplit.id)
            ).scalar_one()
            if replaced is not None:
                conn.execute(
                    update(ModelSplit)
                    .where(ModelSplit.id == replaced.split_id)
                    .values(ended_at=started, ended_by=f"replaced by split {split_id}")
                )
    log.info(
        "split %d: model %d serves %.2f%% of the users, model %d the rest", split_id, model_b, share * 100, model_a
    )
    return Split(
        split_id, model_a, model_b, round(share * BUCKETS) / BUCKETS, multiplier_of(model_b), started, None, None
    )


def end_split(engine: Engine, wait: float = 0.0) -> Split | None:
    """End the running split (every user is served by the active model again); returns
    it, or None when none ran."""
    with writer_lock(engine, wait, holder=lambda: running_description(engine)) as lock:
        with engine.begin() as conn:
            lock.check(conn)
            return end_running(conn, "ended by an admin")

"""An operator's health check: is the schema at the newest revision, is a model active,
how old is it, which training run failed last, and is a traffic split running.

:func:`health` only reads: it never sets up, migrates or locks anything, so a fresh
database stays empty.  The ``models`` table is read with the columns it has had since
the first revision, so a database at an older revision is checked too (and reported as
behind); one at a revision this recsql does not know is not read at all.
``recsql db status`` prints the result and turns it into exit codes
(:mod:`recsql.cli.outcome`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, or_, select

from recsql.db.engine import make_engine
from recsql.db.migrate import all_revisions, current_revision, head_revision, own_tables
from recsql.db.tables import ACTIVE, FAILED, PRUNED, Model, ModelSplit
from recsql.errors import InvalidParameter


@dataclass(frozen=True)
class ActiveModel:
    """The model that serves.  ``age_seconds`` counts from ``activated_at`` (from its
    finish, else its start, for a row that has no activation time)."""

    model_id: int
    activated_at: datetime | None
    age_seconds: float
    n_ratings: int | None
    algorithm: str


@dataclass(frozen=True)
class Failure:
    """The newest training run that failed (pruned ones included: pruning keeps the
    error).  ``after_active``: it started after the active model (or none is active), so
    the newest attempt to retrain failed."""

    model_id: int
    finished_at: datetime | None
    error: str | None
    after_active: bool


@dataclass(frozen=True)
class RunningSplit:
    """The traffic split running now: model B serves ``share`` of the users beside A."""

    split_id: int
    model_a: int
    model_b: int
    share: float
    started_at: datetime


@dataclass(frozen=True)
class Health:
    """What :func:`health` found; ``problems`` holds one short line per failed check."""

    revision: str | None  # None: recsql's tables are absent
    newest: str
    active_model: ActiveModel | None
    last_failure: Failure | None
    max_age: float | None
    problems: tuple[str, ...]
    split: RunningSplit | None = None  # not a problem: what serves besides the active model

    @property
    def upgrade_pending(self) -> bool:
        """The schema is not at the newest revision: behind it, absent, or unknown."""
        return self.revision != self.newest

    @property
    def too_old(self) -> bool:
        """The active model is older than ``max_age`` seconds."""
        return (
            self.active_model is not None and self.max_age is not None and self.active_model.age_seconds > self.max_age
        )

    @property
    def healthy(self) -> bool:
        return not self.problems


def health(url: str | None = None, *, schema: str | None = None, max_age: float | None = None) -> Health:
    """Check the database at ``url`` (else ``$RECSQL_DATABASE_URL``, ...) and recsql's
    ``schema`` namespace, without changing anything.

    The checks: the schema is at the newest revision; a model is active; it is at most
    ``max_age`` seconds old (when given).  A database that cannot be reached raises, as
    every call does (:class:`~recsql.errors.DatabaseUnavailable`).
    """
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not math.isfinite(max_age) or max_age < 0
    ):
        raise InvalidParameter(f"max_age must be a number of seconds, 0 or more, not {max_age!r}")
    engine = make_engine(url, schema)
    try:
        with engine.connect() as connection:
            return check(connection, max_age=max_age)
    finally:
        engine.dispose()


def check(connection: Connection, *, max_age: float | None = None, now: datetime | None = None) -> Health:
    """:func:`health` on an open connection (which it only reads from)."""
    now = _utc(now or datetime.now(UTC))
    revision, newest = current_revision(connection), head_revision()
    known = revision in all_revisions()
    problems: list[str] = []
    if revision is None:
        problems.append("no recsql schema (`recsql db upgrade` creates it)")
    elif not known:
        problems.append(f"schema at revision {revision!r}, which this recsql does not know (made by a newer recsql?)")
    elif revision != newest:
        problems.append(f"schema at revision {revision}, behind {newest}: run `recsql db upgrade`")
    active: ActiveModel | None = None
    failure: Failure | None = None
    split: RunningSplit | None = None
    if known:
        tables = own_tables(connection)
        if "models" in tables:
            active, failure = _models(connection, now)
        if (
            "model_splits" in tables and (revision or "") >= "0011"
        ):  # (a downgrade keeps the table; older views ignore it)
            split = _split(connection)
        if active is None:
            problems.append("no active model (run `recsql train`)")
        elif max_age is not None and active.age_seconds > max_age:
            problems.append(
                f"active model {active.model_id} is {active.age_seconds:.0f} s old, "
                f"older than the {max_age:g} s allowed"
            )
    return Health(revision, newest, active, failure, max_age, tuple(problems), split)


def _split(connection: Connection) -> RunningSplit | None:
    row = connection.execute(
        select(ModelSplit.id, ModelSplit.model_a, ModelSplit.model_b, ModelSplit.buckets, ModelSplit.started_at)
        .where(ModelSplit.ended_at.is_(None))
        .order_by(ModelSplit.id.desc())
    ).first()
    if row is None:
        return None
    return RunningSplit(row.id, row.model_a, row.model_b, row.buckets / 10_000, _utc(row.started_at))


def _models(connection: Connection, now: datetime) -> tuple[ActiveModel | None, Failure | None]:
    """The active model and the newest failed run, read with the columns every revision has."""
    row = connection.execute(
        select(
            Model.id, Model.created_at, Model.finished_at, Model.activated_at, Model.algorithm, Model.n_ratings
        ).where(Model.status == ACTIVE)
    ).first()
    active = None
    if row is not None:
        since = _utc(row.activated_at or row.finished_at or row.created_at)
        active = ActiveModel(
            row.id,
            row.activated_at and _utc(row.activated_at),
            (now - since).total_seconds(),
            row.n_ratings,
            row.algorithm,
        )
    failed = connection.execute(
        select(Model.id, Model.created_at, Model.finished_at, Model.error)
        .where(or_(Model.status == FAILED, and_(Model.status == PRUNED, Model.error.is_not(None))))
        .order_by(Model.created_at.desc(), Model.id.desc())
        .limit(1)
    ).first()
    failure = None
    if failed is not None:
        after = row is None or (_utc(failed.created_at), failed.id) > (_utc(row.created_at), row.id)
        failure = Failure(failed.id, failed.finished_at and _utc(failed.finished_at), failed.error, after)
    return active, failure


def _utc(moment: datetime) -> datetime:
    """A stored time as UTC (SQLite gives back naive times; recsql writes them in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

"""The ``models`` rows read back: :class:`ModelInfo` and the lookups every reader shares.

One record type for a model version, typed (its settings as properties, not JSON keys),
so training, serving, the admin's views and the CLI never read an ORM row or a JSON key
of ``models`` themselves.  Serving reads the active model through the ``active_model``
view (:data:`ACTIVE_MODEL_VIEW`), the one part of ``models`` a reader role may see; the
admin's readers read ``models`` itself.  Changing a version's row is :mod:`.runs`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

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
    select,
)

from recsql.data.source import Source
from recsql.db.lock import lock_is_free
from recsql.db.tables import ACTIVE, READY, RETIRED, RUNNING, Model
from recsql.errors import InvalidParameter, NoActiveModel, UnknownModel

# Recommendations stored per user when a run does not say (runs made before it did).
DEFAULT_RECOMMEND_N = 10

OUTPUT_TABLES = (
    "user_features",
    "movie_features",
    "user_biases",
    "movie_biases",
    "movie_similarities",
    "user_recommendations",
    "movie_popularity",
)

# A model whose rows are all there and were never discarded: it can be (re)activated.
COMPLETE = (READY, ACTIVE, RETIRED)

DEAD = "dead"  # shown, never stored: running or ready while no process holds the writer lock


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
    "active_model",
    MetaData(),
    Column("model_id", Integer),
    Column("created_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("activated_at", DateTime(timezone=True)),
    Column("algorithm", String),
    Column("params", JSON),
    Column("metrics", JSON),
    Column("timings", JSON),
    Column("n_users", Integer),
    Column("n_movies", Integer),
    Column("n_ratings", BigInteger),
    Column("global_mean", Float),
    Column("rating_min", Float),
    Column("rating_max", Float),
    Column("from_source", Boolean),
)


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


def complete_model(conn: Connection, model_id: int, what: str) -> ModelInfo:
    """A version whose output rows exist (ready, active or retired), or UnknownModel /
    InvalidParameter saying why ``what`` (e.g. "inspected") cannot use it."""
    model = get_model(conn, model_id)
    if model.status not in COMPLETE:
        raise InvalidParameter(
            f"model {model_id} is {model.status}: it stores no lists to be {what}; "
            "see `recsql models` for the complete ones"
        )
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

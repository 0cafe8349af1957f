"""What applications log in ``events``: checked, appended in bulk, imported, pruned.

An application writes events with its own plain ``INSERT`` (the table's defaults fill
the time) or in batches through :func:`log_events`; :func:`import_events` appends a
CSV file of them.  Either way a batch is one transaction: a bad row refuses the batch,
and nothing of it is written.  Ids are recsql's integers, as the views give them; a
catalogue imported with text ids takes the application's keys instead (new ones are
given integers, as an import gives them).  :func:`prune_events` deletes old events in
short transactions, so growth stays bounded while applications keep writing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias, cast

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from recsql.data.checks import integers, numbers
from recsql.data.formats import Layout, shown
from recsql.data.frames import integer_ids as whole_numbers
from recsql.data.frames import seconds
from recsql.data.reader import Column, Records, file_text
from recsql.db.bulk import insert_columns
from recsql.db.engine import begin_write
from recsql.db.events import database_clock, delete_older_than
from recsql.db.keys import Side, integer_ids, stored_id_kind
from recsql.db.tables import EVENT_KINDS
from recsql.errors import InputError, InvalidParameter

REQUIRED = ("kind", "user_id", "movie_id")
OPTIONAL = ("at", "model_id", "list", "rank", "value")
FIELDS = REQUIRED + OPTIONAL
LIST_LENGTH = 32  # events.list is VARCHAR(32)
PRUNE_BATCH = 50_000  # events deleted per transaction
DAY = 86_400

Events: TypeAlias = pd.DataFrame | Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


def log_events(engine: Engine, events: Events) -> int:
    """Append a batch of events in one transaction; returns how many.

    ``events``: a DataFrame, a mapping of columns, or a list of dicts, with ``kind``
    (one of :data:`~recsql.db.tables.EVENT_KINDS`), ``user_id`` and ``movie_id``, and
    optionally ``at`` (Unix seconds or datetimes; the database's clock where missing),
    ``model_id``, ``list`` and ``rank`` (what showed the movie: the views' ``model_id``
    and ``rank``) and ``value`` (a rating's value, a price).  A bad value refuses the
    whole batch, naming its row.
    """
    frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame(events)
    unknown = sorted(set(map(str, frame.columns)) - set(FIELDS))
    if unknown:
        raise InvalidParameter(f"events have no column {', '.join(unknown)}; they have {', '.join(FIELDS)}")
    for name in REQUIRED:
        if name not in frame.columns:
            raise InvalidParameter(f"events need a {name} column")
    columns: dict[str, Any] = {"kind": _kinds(frame["kind"].to_numpy(dtype=object), lambda i, reason: _row(i, reason))}
    if "at" in frame.columns:
        at = seconds(frame["at"])
        _refuse_at(
            ~np.isnan(at) & ((at < 0) | (at != np.round(at))),
            lambda i: _row(i, f"at {frame['at'].iloc[i]!r} is not Unix seconds"),
        )
        columns["at"] = at  # NaN where missing: the database's clock (_append)
    for name in ("model_id", "rank"):
        if name in frame.columns:
            columns[name] = _nullable_integers(frame[name], name)
    if "list" in frame.columns:
        columns["list"] = _lists(frame["list"].to_numpy(dtype=object), lambda i, reason: _row(i, reason))
    if "value" in frame.columns:
        value = pd.to_numeric(frame["value"], errors="coerce")
        bad = (value.isna() & frame["value"].notna()) | np.isinf(value.to_numpy(dtype=np.float64, na_value=np.nan))
        _refuse_at(
            bad.to_numpy(dtype=bool), lambda i: _row(i, f"value {frame['value'].iloc[i]!r} is not a finite number")
        )
        columns["value"] = _nullable(value.to_numpy(dtype=np.float64, na_value=np.nan))
    return _append(
        engine,
        columns,
        keys=lambda name: frame[name].to_numpy().astype(str).astype(object),
        whole=lambda name: whole_numbers(frame[name].to_numpy(), f"events' {name}"),
    )


def import_events(engine: Engine, path: str | Path) -> int:
    """Append the events of a CSV file whose header names its columns (any of
    :data:`FIELDS`, in any order; ``kind``, ``user_id`` and ``movie_id`` required; empty
    fields are NULL, an empty ``at`` the database's clock) in one transaction; a bad
    line imports nothing and is named.  Returns how many."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the file ({exc.strerror or exc})") from None
    records = Records(path, file_text(path, data, Layout(",", None, 0)), Layout(",", None, 0))
    header = [name.strip().lower() for name in records.first()]
    for name in header:
        if name not in FIELDS:
            raise InputError(
                path, f"the header names {shown(name)}; an events file's columns are {', '.join(FIELDS)}", 1
            )
    for name in REQUIRED:
        if name not in header:
            raise InputError(path, f"the header has no {name} column (it needs {', '.join(REQUIRED)})", 1)
    if len(set(header)) < len(header):
        raise InputError(path, "the header names a column twice", 1)
    records.skip_first()
    found, lines = records.columns(len(header), range(len(header)), " (as the header has)")
    if len(lines) == 0:
        raise InputError(path, "the file has a header but no events")
    raw = dict(zip(header, found))

    def refuse(i: int, reason: str) -> None:
        raise InputError(path, reason, int(lines[i]))

    columns: dict[str, Any] = {"kind": _kinds(np.array(raw["kind"].fields(), dtype=object), refuse)}
    if "at" in raw:
        columns["at"] = _optional(raw["at"], lines, lambda c, at_lines: integers(path, c, at_lines, "at"))
    for name in ("model_id", "rank"):
        if name in raw:
            columns[name] = _optional(raw[name], lines, lambda c, at_lines, n=name: integers(path, c, at_lines, n))
    if "value" in raw:
        columns["value"] = _optional(raw["value"], lines, lambda c, at_lines: numbers(path, c, at_lines, "value"))
    if "list" in raw:
        values = np.array(raw["list"].fields(), dtype=object)
        values[values == ""] = None
        columns["list"] = _lists(values, refuse)
    return _append(
        engine,
        columns,
        keys=lambda name: np.array(raw[name].fields(), dtype=object),
        whole=lambda name: integers(path, raw[name], lines, name, negative=True),
    )


def prune_events(engine: Engine, older_than_days: float) -> int:
    """Delete the events older than ``older_than_days`` days (by their ``at``), a batch
    of :data:`PRUNE_BATCH` per transaction so that applications' inserts never wait
    long; returns how many.  The retention setting: run it from cron."""
    if not older_than_days > 0:
        raise InvalidParameter(f"older_than_days must be positive, not {older_than_days}")
    return delete_older_than(engine, int(older_than_days * DAY), PRUNE_BATCH)


def _append(
    engine: Engine, columns: dict[str, Any], keys: Callable[[str], np.ndarray], whole: Callable[[str], np.ndarray]
) -> int:
    """Insert the checked columns with the ids (``user_id``, ``movie_id``) as the
    catalogue takes them: ``keys(name)`` mapped to integers in a text-id catalogue, else
    ``whole(name)``; missing times read from the database's clock (as a plain INSERT's
    default); all inside one transaction."""
    with begin_write(engine) as conn:  # reads the keys, then writes: beside other writers
        keyed = stored_id_kind(conn) == "text"
        if "at" in columns:
            missing = pd.isna(columns["at"])
            clock = database_clock(conn) if missing.any() else 0
            columns["at"] = np.where(missing, clock, columns["at"]).astype(np.int64)
        for name in ("user_id", "movie_id"):
            side = cast(Side, name.removesuffix("_id"))
            columns[name] = integer_ids(conn, side, keys(name)) if keyed else whole(name)
        order = [name for name in FIELDS if name in columns]
        return insert_columns(conn, "events", {name: columns[name] for name in order})


def _row(i: int, reason: str) -> None:
    raise InvalidParameter(f"event {i} (counting from 0): {reason}")


def _refuse_at(bad: np.ndarray, refuse: Any) -> None:
    if bad.any():
        refuse(int(np.argmax(bad)))


def _kinds(values: np.ndarray, refuse: Any) -> np.ndarray:
    bad = ~pd.Series(values, dtype=object).isin(EVENT_KINDS).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        refuse(i, f"kind {values[i]!r} is not one of {', '.join(EVENT_KINDS)}")
    return values


def _lists(values: np.ndarray, refuse: Any) -> np.ndarray:
    strings = pd.Series(values, dtype=object)
    bad = (strings.notna() & strings.map(lambda v: not isinstance(v, str) or len(v) > LIST_LENGTH)).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        refuse(i, f"list {values[i]!r} is not a name of at most {LIST_LENGTH} characters")
    return _nullable(values)


def _nullable(values: np.ndarray) -> np.ndarray:
    """An object array with None where a value is missing (NULL on either database)."""
    out = np.array(values, dtype=object)
    out[pd.isna(out)] = None
    return out


def _nullable_integers(column: pd.Series, name: str) -> np.ndarray:
    present = column.notna().to_numpy()
    out = np.full(len(column), None, dtype=object)
    if present.any():
        out[present] = whole_numbers(column[present].to_numpy(), f"events' {name}").astype(object)
    return out


def _optional(column: Column, lines: np.ndarray, parse: Any) -> np.ndarray:
    """A column whose empty fields are NULL: the others parsed by ``parse`` (with their
    lines, for its messages)."""
    values = np.array(column.fields(), dtype=object)
    present = values != ""
    out = np.full(len(values), None, dtype=object)
    if present.any():
        kept = Column()
        kept.extend(values[present])
        kept.close()
        out[present] = parse(kept, lines[present]).astype(object)
    return out

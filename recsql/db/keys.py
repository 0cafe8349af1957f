"""Application ids of any type (text, UUIDs) and the integers recsql uses for them.

recsql trains, stores and serves integer ids.  A catalogue imported with text ids keeps
each key once in ``user_keys``/``movie_keys`` beside the integer it was given (new keys
get the next integers, in order of first appearance), so the bulk paths never carry
strings, and the views and the API show and accept the application's own keys.
A catalogue's ids are one kind: text once any key is stored, integers otherwise.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from recsql.db.bulk import insert_columns
from recsql.db.tables import Movie, MovieKey, Rating, UserKey
from recsql.errors import InvalidParameter

IdKind = Literal["integer", "text"]
ID_KINDS: tuple[str, ...] = ("integer", "text")
Side = Literal["user", "movie"]
_TABLES = {"user": UserKey, "movie": MovieKey}


def _columns(side: Side) -> tuple[Any, Any]:
    """The (integer id, key) columns of a side's key table."""
    table = _TABLES[side]
    return getattr(table, f"{side}_id"), getattr(table, f"{side}_key")


def has_keys(conn: Connection, side: Side) -> bool:
    """Whether the catalogue knows this side by application keys."""
    return conn.execute(select(_TABLES[side]).limit(1)).first() is not None


def stored_id_kind(conn: Connection) -> IdKind | None:
    """``text`` when the catalogue maps keys, ``integer`` when it holds ratings or movies
    without keys, None while it is empty."""
    if has_keys(conn, "user") or has_keys(conn, "movie"):
        return "text"
    for table in (Rating, Movie):
        if conn.execute(select(table).limit(1)).first() is not None:
            return "integer"
    return None


def check_id_kind(conn: Connection, ids: IdKind | None) -> IdKind:
    """The kind an import uses: the one asked for, which must match a non-empty
    catalogue's, else the catalogue's, else integers."""
    if ids is not None and ids not in ID_KINDS:
        raise InvalidParameter(f"ids are one of {', '.join(ID_KINDS)}, not {ids!r}")
    stored = stored_id_kind(conn)
    if ids is not None and stored is not None and ids != stored:
        raise InvalidParameter(
            f"this catalogue's ids are {stored}; it cannot take {ids} ids "
            "(import them into an empty database, or into a namespace of their own with --schema)"
        )
    return ids or stored or "integer"


def integer_ids(conn: Connection, side: Side, keys: np.ndarray) -> np.ndarray:
    """The integer of every key (an object array of strings), giving new keys the next
    integers and storing them, inside the caller's transaction."""
    table = _TABLES[side]
    id_column, key_column = f"{side}_id", f"{side}_key"
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    id_col, key_col = _columns(side)
    rows = conn.execute(select(key_col, id_col)).all()
    known = pd.Series({key: ident for key, ident in rows}, dtype=np.int64) if rows else pd.Series(dtype=np.int64)
    ids = pd.Series(uniques).map(known)
    new = ids.isna().to_numpy()
    if new.any():
        start = int(known.max()) + 1 if len(known) else 1
        fresh = np.arange(start, start + int(new.sum()), dtype=np.int64)
        ids[new] = fresh
        insert_columns(conn, table.__tablename__, {id_column: fresh, key_column: np.asarray(uniques)[new]})
    return ids.to_numpy(dtype=np.int64)[codes]


def keys_of(conn: Connection, side: Side, ids: np.ndarray) -> dict[int, str]:
    """The application's key of each integer id that has one."""
    if not len(ids):
        return {}
    id_col, key_col = _columns(side)
    return dict(conn.execute(select(id_col, key_col).where(id_col.in_([int(i) for i in ids]))).all())


def all_keys(conn: Connection, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """Every integer of a side that has a key, ascending, and its key (a whole model's
    worth: one read of the table rather than an IN list of every id)."""
    id_col, key_col = _columns(side)
    rows = conn.execute(select(id_col, key_col).order_by(id_col)).all()
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=object)


def ids_of(conn: Connection, side: Side, keys: list[str]) -> dict[str, int]:
    """The integers of those application keys the catalogue knows (one query)."""
    if not keys:
        return {}
    id_col, key_col = _columns(side)
    return dict(conn.execute(select(key_col, id_col).where(key_col.in_(keys))).all())

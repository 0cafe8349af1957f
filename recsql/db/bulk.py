"""The bulk paths in and out of the database: many rows, no ORM objects, no per-row SQL.

One function per direction, with the fast path of each dialect: PostgreSQL uses COPY
through psycopg 3 (binary where every column is numeric, CSV otherwise) and reads id
ranges as binary arrays; SQLite uses one ``executemany`` per chunk inside the caller's
transaction and fills numpy arrays straight from the cursor.  Callers pass numpy arrays
and get numpy arrays back.
"""

from __future__ import annotations

import functools
import io
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table

from recsql.db import timeouts
from recsql.threads import thread_count

P = ParamSpec("P")
R = TypeVar("R")

CHUNK_ROWS = 1_000_000


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _driver(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (sqlite3's or psycopg's), for the fast paths."""
    driver = conn.connection.driver_connection
    assert driver is not None, "the connection is closed"
    return driver


def _driver_errors_said(function: Callable[P, R]) -> Callable[P, R]:
    """The fast paths talk to the driver directly, past SQLAlchemy's error handling: a
    wait for a lock that timed out is said here as recsql's engines say it
    (:mod:`recsql.db.timeouts`), naming what was locked and the setting."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            conn = args[0]
            assert isinstance(conn, Connection)
            waited = timeouts.explained(exc, conn.engine, conn.get_execution_options())
            if waited is None:
                raise
            raise waited from exc

    return wrapper


@_driver_errors_said
def insert_columns(conn: Connection, table: str, columns: Mapping[str, np.ndarray | Sequence]) -> int:
    """Append rows given column-wise to ``table`` inside the caller's transaction.

    ``None``/NaN in an object column becomes NULL.  Returns the number of rows.
    """
    frame = pd.DataFrame(dict(columns))
    if frame.empty:
        return 0
    names = ", ".join(_quote(conn, c) for c in frame.columns)
    target = f"{_quote(conn, table)} ({names})"
    if conn.dialect.name == "postgresql":
        _copy_in(conn, target, frame)
    else:
        sql = f"INSERT INTO {target} VALUES ({', '.join('?' * frame.shape[1])})"
        cursor = _driver(conn).cursor()
        try:
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS]
                cursor.executemany(sql, _rows(part))
        finally:
            cursor.close()
    return len(frame)


@_driver_errors_said
def upsert_columns(conn: Connection, table: str, key: str, columns: Mapping[str, np.ndarray | Sequence]) -> int:
    """Insert rows given column-wise, updating the existing row where ``key`` matches."""
    frame = pd.DataFrame(dict(columns))
    if frame.empty:
        return 0
    names = [_quote(conn, c) for c in frame.columns]
    updates = ", ".join(f"{n} = excluded.{n}" for c, n in zip(frame.columns, names) if c != key)
    conflict = f"ON CONFLICT ({_quote(conn, key)}) DO UPDATE SET {updates}"
    if conn.dialect.name == "postgresql":
        stage = "recsql_stage"
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} (LIKE {_quote(conn, table)}) ON COMMIT DROP")
        insert_columns(conn, stage, frame)
        conn.exec_driver_sql(
            f"INSERT INTO {_quote(conn, table)} ({', '.join(names)}) SELECT {', '.join(names)} FROM {stage} {conflict}"
        )
        conn.exec_driver_sql(f"DROP TABLE {stage}")
    else:
        sql = (
            f"INSERT INTO {_quote(conn, table)} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) {conflict}"
        )
        cursor = _driver(conn).cursor()
        try:
            cursor.executemany(sql, _rows(frame))
        finally:
            cursor.close()
    return len(frame)


@contextmanager
def indexes_dropped(conn: Connection, table: Table) -> Iterator[None]:
    """Drop ``table``'s indexes for a bulk load and rebuild them after it.

    Building an index once over loaded rows is much faster than updating it per row;
    DDL is transactional on both databases, so a failed load restores the indexes too.
    """
    indexes = [index for index in table.indexes if index.name]
    for index in indexes:
        index.drop(conn)
    # PostgreSQL can drop the primary key too (SQLite's is the rowid itself).
    key = table.primary_key if conn.dialect.name == "postgresql" and table.primary_key.name else None
    quoted = _quote(conn, table.name)
    key_name = _quote(conn, str(key.name)) if key is not None else ""
    if key is not None:
        conn.exec_driver_sql(f"ALTER TABLE {quoted} DROP CONSTRAINT {key_name}")
    yield
    if key is not None:
        columns = ", ".join(_quote(conn, c.name) for c in key.columns)
        conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD CONSTRAINT {key_name} PRIMARY KEY ({columns})")
    for index in indexes:
        index.create(conn)


def _rows(frame: pd.DataFrame) -> Iterator[tuple]:
    columns = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            columns.append([None if v is None or v != v else v for v in col.tolist()])
        else:
            columns.append(col.tolist())
    return zip(*columns)


def _copy_in(conn: Connection, target: str, frame: pd.DataFrame) -> None:
    raw = _driver(conn)
    if all(dtype.kind in "iuf" for dtype in frame.dtypes) and not frame.isna().to_numpy().any():
        layouts = _binary_layouts(raw, target.split(" (")[0], list(frame.columns))
        if layouts is not None:
            _copy_in_binary(raw, target, frame, layouts)
            return
    # NULL is a marker no value holds (the csv writer leaves an empty string unquoted, so
    # CSV's default empty NULL would turn empty titles into NULLs); \r\n line ends make
    # the writer quote any field holding a lone \r, which PostgreSQL would otherwise read
    # as the end of the row.
    null = f"recsql-null-{uuid.uuid4().hex}"
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv, NULL '{null}')") as copy:
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS]
                buffer = io.StringIO()
                part.to_csv(buffer, header=False, index=False, na_rep=null, float_format="%.17g", lineterminator="\r\n")
                copy.write(buffer.getvalue())


_BINARY_TYPES = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "real": ">f4", "double precision": ">f8"}


def _binary_layouts(raw: Any, table: str, columns: list[str]) -> list[str] | None:
    """The binary wire type of each target column, or None if one has no fixed-size type."""
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        types = dict(cursor.fetchall())
    layouts = [_BINARY_TYPES.get(types.get(column, "")) for column in columns]
    return None if None in layouts else [layout for layout in layouts if layout is not None]


def _copy_in_binary(raw: Any, target: str, frame: pd.DataFrame, layouts: list[str]) -> None:
    """COPY numeric columns in PostgreSQL's binary format, built by numpy: no text at all.

    Binary COPY needs each value in its column's exact type, so ``layouts`` (from the
    catalogue) says which big-endian width every column takes.
    """
    fields = [("count", ">i2")]
    for i, wire in enumerate(layouts):
        fields += [(f"len{i}", ">i4"), (f"v{i}", wire)]
    layout = np.dtype(fields)
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    columns = list(frame.columns)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT binary)") as copy:
            copy.write(header)
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS]
                rows = np.empty(len(part), dtype=layout)
                rows["count"] = len(columns)
                for i, name in enumerate(columns):
                    rows[f"len{i}"] = layout[f"v{i}"].itemsize
                    rows[f"v{i}"] = part[name].to_numpy()
                copy.write(rows.tobytes())
            copy.write((-1).to_bytes(2, "big", signed=True))


Columns = tuple[np.ndarray, ...]

# One letter per selected column: "i" reads as int64, "f" as float64.
_NUMPY = {"i": np.int64, "f": np.float64}
_WIRE = {"i": ">i8", "f": ">f8"}
_CAST = {"i": "int8", "f": "float8"}
_COPY_HEADER = 19  # signature, flags, extension length; a 2-byte trailer ends the stream


@_driver_errors_said
def read_columns(
    conn: Connection, select_sql: str, kinds: str = "iif", *, table: str | None = None, key: str | None = None
) -> Columns:
    """Run ``select_sql`` (NOT NULL numeric columns) into one numpy array per column.

    ``kinds`` has one letter per selected column: ``i`` for an integer (int64), ``f``
    for a float (float64).  This is how ratings reach the trainer and a stored model
    reaches the server.

    PostgreSQL: when the rows come from one ``table`` with an integer ``key`` (the
    ratings table and its id), ranges of the key are fetched as one binary array per
    column and range (``array_agg``), parsed by numpy, by two connections at once;
    otherwise binary COPY is parsed block by block (psycopg hands COPY data over one
    row at a time, which costs about a second per million rows).  SQLite fills
    structured arrays from the cursor in bounded chunks.  Either way the rows arrive as
    column arrays, never as a list of Python rows.
    """
    if not kinds or set(kinds) - set(_NUMPY):
        raise ValueError(f"kinds must be letters i/f, not {kinds!r}")
    names = [f"c{i}" for i in range(len(kinds))]
    parts: list[Columns]
    if conn.dialect.name == "postgresql" and table and key:
        parts = _read_pg_arrays(conn, select_sql, kinds, table, key)
    elif conn.dialect.name == "postgresql":
        parts = _read_pg_copy(conn, select_sql, kinds, names)
    else:
        parts = []
        row = np.dtype([(name, _NUMPY[kind]) for name, kind in zip(names, kinds)])
        cursor = _driver(conn).cursor()
        try:
            cursor.execute(select_sql)
            while True:
                chunk = np.fromiter(itertools.islice(cursor, CHUNK_ROWS), dtype=row)
                parts.append(tuple(chunk[name].copy() for name in names))
                if len(chunk) < CHUNK_ROWS:
                    break
        finally:
            cursor.close()
    if not parts:
        return tuple(np.empty(0, _NUMPY[kind]) for kind in kinds)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(kinds)))


def _cast_sql(select_sql: str, kinds: str, names: list[str], aggregate: bool = False) -> str:
    columns = ", ".join(
        f"array_agg({n}::{_CAST[k]})" if aggregate else f"{n}::{_CAST[k]}" for n, k in zip(names, kinds)
    )
    return f"SELECT {columns} FROM ({select_sql}) AS t({', '.join(names)})"


def _read_pg_copy(conn: Connection, select_sql: str, kinds: str, names: list[str]) -> list[Columns]:
    """Binary COPY of the query, parsed by numpy in blocks of about a million rows."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for name, kind in zip(names, kinds):
        fields += [(f"len_{name}", ">i4"), (name, _WIRE[kind])]
    layout = np.dtype(fields)

    def parse(body: bytes) -> Columns:
        rows = np.frombuffer(body, dtype=layout)
        if any((rows[f"len_{name}"] != 8).any() for name in names):
            raise ValueError("NULL in a column read by read_columns")
        return tuple(rows[name].astype(_NUMPY[kind]) for name, kind in zip(names, kinds))

    parts: list[Columns] = []
    raw = _driver(conn)
    pending = bytearray()
    skip = _COPY_HEADER
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY ({_cast_sql(select_sql, kinds, names)}) TO STDOUT (FORMAT binary)") as copy:
            for block in copy:
                pending += block
                if skip:
                    if len(pending) < skip:
                        continue
                    del pending[:skip]
                    skip = 0
                whole = len(pending) // layout.itemsize * layout.itemsize
                if whole >= CHUNK_ROWS * layout.itemsize // 8:
                    parts.append(parse(bytes(pending[:whole])))
                    del pending[:whole]
    whole = len(pending) // layout.itemsize * layout.itemsize  # the 2-byte trailer stays
    if whole:
        parts.append(parse(bytes(pending[:whole])))
    return parts


def _read_pg_arrays(
    conn: Connection, select_sql: str, kinds: str, table: str, key: str, workers: int | None = None
) -> list[Columns]:
    """Ranges of ``key`` as binary arrays, fetched by ``workers`` connections at once.

    The connections read one consistent snapshot: ``conn`` exports its snapshot and each
    worker's REPEATABLE READ transaction imports it (as pg_dump's parallel mode does),
    so rows written meanwhile are in all ranges or in none.  ``workers``: the
    process's thread count (:mod:`recsql.threads`) unless given.
    """
    workers = workers or thread_count()
    from psycopg import IsolationLevel, sql  # only PostgreSQL gets here, so psycopg is installed

    int8_loader, float8_loader = _array_loaders()
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    names = [f"c{i}" for i in range(len(kinds))]
    query = _cast_sql(f"{select_sql} WHERE {key} >= %s AND {key} < %s", kinds, names, aggregate=True)

    def work(worker: int) -> list[tuple[int, Columns]]:
        fairy = conn.engine.raw_connection()
        raw: Any = fairy.driver_connection
        try:
            raw.isolation_level = IsolationLevel.REPEATABLE_READ
            with raw.cursor(binary=True) as cursor:
                cursor.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                cursor.adapters.register_loader(INT8_ARRAY_OID, int8_loader)
                cursor.adapters.register_loader(FLOAT8_ARRAY_OID, float8_loader)
                low, high = cursor.execute(f"SELECT min({key}), max({key}) FROM {table}").fetchone()
                found = []
                if low is not None:
                    starts = range(low, high + 1, CHUNK_ROWS)
                    for number, start in enumerate(starts):
                        if number % workers == worker:
                            arrays = cursor.execute(query, (start, start + CHUNK_ROWS)).fetchone()
                            if arrays[0] is not None:
                                found.append((number, tuple(arrays)))
            return found
        finally:
            raw.rollback()
            raw.isolation_level = None
            fairy.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunks = [chunk for found in pool.map(work, range(workers)) for chunk in found]
    return [part for _, part in sorted(chunks, key=lambda item: item[0])]


INT8_ARRAY_OID, FLOAT8_ARRAY_OID = 1016, 1022  # pg_type oids of int8[] and float8[]


@functools.cache
def _array_loaders() -> tuple[type, type]:
    """psycopg loaders of int8[] and float8[]; built on first use, since psycopg is only
    installed with ``recsql[postgres]`` and SQLite never gets here."""
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    class _NumpyArrayLoader(Loader):
        """A one-dimensional PostgreSQL array without NULLs, in binary form, as a numpy array."""

        format = Format.BINARY
        element: str = ">i8"

        def load(self, data: Any) -> np.ndarray:
            data = bytes(data)
            ndim = int.from_bytes(data[0:4], "big")
            if ndim == 0:
                return np.empty(0, dtype=self.element.replace(">", "="))
            items = np.frombuffer(
                data, dtype=np.dtype([("length", ">i4"), ("value", self.element)]), offset=12 + 8 * ndim
            )
            if (items["length"] < 0).any():
                raise ValueError("NULL in an array read by read_columns")
            return items["value"].astype(self.element.replace(">", "="))

    class _Int8ArrayLoader(_NumpyArrayLoader):
        element = ">i8"

    class _Float8ArrayLoader(_NumpyArrayLoader):
        element = ">f8"

    return _Int8ArrayLoader, _Float8ArrayLoader

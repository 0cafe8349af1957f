"""Engines and the bulk paths in and out of the database.

Everything that moves many rows lives here, one function per direction, with the fast
path of each dialect: PostgreSQL uses COPY through psycopg 3 (binary out, CSV in);
SQLite uses one ``executemany`` per chunk inside the caller's transaction.  Callers pass
numpy arrays and get numpy arrays back: no ORM object and no SQL statement per row.
"""

from __future__ import annotations

import io
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from psycopg import IsolationLevel, sql
from psycopg.adapt import Loader
from psycopg.pq import Format
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import NoSuchModuleError

from recsql.errors import DatabaseUnavailable

DEFAULT_URL = "sqlite:///recsql.db"
URL_ENV = "RECSQL_DATABASE_URL"
CHUNK_ROWS = 1_000_000


def resolve_url(url: str | None = None) -> str:
    """The database URL: explicit, else ``$RECSQL_DATABASE_URL``, else ``sqlite:///recsql.db``."""
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


def normalize_url(url: str) -> str:
    """Accept the plain ``postgresql://`` URLs people paste; recsql speaks psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str | None = None) -> Engine:
    """Create an engine and prove it connects, or raise :class:`DatabaseUnavailable`."""
    url = normalize_url(resolve_url(url))
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {redact(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name != "postgresql":
        raise DatabaseUnavailable(
            f"recsql supports SQLite and PostgreSQL, not {engine.dialect.name} ({redact(url)})"
        )
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from None
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets applications read the views while a retrain writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Bulk loads and reads: a bigger page cache and in-memory temporary b-trees (index
    # builds, sorts).  Durability is unchanged: WAL with synchronous=NORMAL never corrupts.
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def insert_columns(
    conn: Connection, table: str, columns: Mapping[str, np.ndarray | Sequence]
) -> int:
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
        cursor = conn.connection.driver_connection.cursor()
        try:
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS]
                cursor.executemany(sql, _rows(part))
        finally:
            cursor.close()
    return len(frame)


def upsert_columns(
    conn: Connection, table: str, key: str, columns: Mapping[str, np.ndarray | Sequence]
) -> int:
    """Insert rows given column-wise, updating the existing row where ``key`` matches."""
    frame = pd.DataFrame(dict(columns))
    if frame.empty:
        return 0
    names = [_quote(conn, c) for c in frame.columns]
    updates = ", ".join(f"{n} = excluded.{n}" for c, n in zip(frame.columns, names) if c != key)
    conflict = f"ON CONFLICT ({_quote(conn, key)}) DO UPDATE SET {updates}"
    if conn.dialect.name == "postgresql":
        stage = "recsql_stage"
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {stage} (LIKE {_quote(conn, table)}) ON COMMIT DROP"
        )
        insert_columns(conn, stage, frame)
        conn.exec_driver_sql(
            f"INSERT INTO {_quote(conn, table)} ({', '.join(names)}) "
            f"SELECT {', '.join(names)} FROM {stage} {conflict}"
        )
        conn.exec_driver_sql(f"DROP TABLE {stage}")
    else:
        sql = (
            f"INSERT INTO {_quote(conn, table)} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))}) {conflict}"
        )
        cursor = conn.connection.driver_connection.cursor()
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
    if key is not None:
        conn.exec_driver_sql(f"ALTER TABLE {quoted} DROP CONSTRAINT {_quote(conn, key.name)}")
    yield
    if key is not None:
        columns = ", ".join(_quote(conn, c.name) for c in key.columns)
        conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD CONSTRAINT {_quote(conn, key.name)} PRIMARY KEY ({columns})")
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
    raw = conn.connection.driver_connection
    if all(dtype.kind in "iuf" for dtype in frame.dtypes) and not frame.isna().to_numpy().any():
        layouts = _binary_layouts(raw, target.split(" (")[0], list(frame.columns))
        if layouts is not None:
            _copy_in_binary(raw, target, frame, layouts)
            return
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy:
            for start in range(0, len(frame), CHUNK_ROWS):
                part = frame.iloc[start : start + CHUNK_ROWS]
                buffer = io.StringIO()
                # NULL is the unquoted empty field; empty strings are written quoted.
                part.to_csv(buffer, header=False, index=False, na_rep="", float_format="%.17g")
                copy.write(buffer.getvalue())


_BINARY_TYPES = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "real": ">f4", "double precision": ">f8"}


def _binary_layouts(raw, table: str, columns: list[str]) -> list[str] | None:
    """The binary wire type of each target column, or None if one has no fixed-size type."""
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        types = dict(cursor.fetchall())
    layouts = [_BINARY_TYPES.get(types.get(column, "")) for column in columns]
    return None if None in layouts else layouts


def _copy_in_binary(raw, target: str, frame: pd.DataFrame, layouts: list[str]) -> None:
    """COPY numeric columns in PostgreSQL's binary format, built by numpy: no text at all.

    Binary COPY needs each value in its column's exact type, so ``layouts`` (from the
    catalogue) says which big-endian width every column takes.
    """
    fields = [("count", ">i2")]
    for i, layout in enumerate(layouts):
        fields += [(f"len{i}", ">i4"), (f"v{i}", layout)]
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


# Big-endian layout of one row of `COPY (SELECT int8, int8, float8) TO STDOUT (FORMAT binary)`:
# field count, then (length, value) per field; the stream starts with a 19-byte header
# (signature, flags, extension length) and ends with a 2-byte trailer.
_BINARY_TRIPLE = np.dtype(
    [("n", ">i2"), ("l1", ">i4"), ("a", ">i8"), ("l2", ">i4"), ("b", ">i8"), ("l3", ">i4"), ("v", ">f8")]
)
_BINARY_HEADER = 19
_TRIPLE = np.dtype([("a", np.int64), ("b", np.int64), ("v", np.float64)])


def read_triples(
    conn: Connection, select_sql: str, *, table: str | None = None, key: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``select_sql`` (three NOT NULL columns: int, int, float) into three arrays.

    PostgreSQL: when the rows come from one ``table`` with an integer ``key`` (the
    ratings table and its id), ranges of the key are fetched as three binary arrays per
    range (``array_agg``), parsed by numpy; otherwise binary COPY is parsed block by
    block (psycopg hands COPY data over one row at a time, which costs about a second
    per million rows).  SQLite fills structured arrays from the cursor in bounded chunks.  Either way the rows
    arrive as column arrays, never as a list of Python rows.  This is how ratings reach
    the trainer.
    """
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if conn.dialect.name == "postgresql" and table and key:
        parts = _read_pg_arrays(conn, select_sql, table, key)
    elif conn.dialect.name == "postgresql":
        cast = f"SELECT a::int8, b::int8, v::float8 FROM ({select_sql}) AS t(a, b, v)"
        raw = conn.connection.driver_connection
        pending = bytearray()
        skip = _BINARY_HEADER
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY ({cast}) TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    pending += block
                    if skip:
                        if len(pending) < skip:
                            continue
                        del pending[:skip]
                        skip = 0
                    whole = len(pending) // _BINARY_TRIPLE.itemsize * _BINARY_TRIPLE.itemsize
                    if whole >= CHUNK_ROWS * _BINARY_TRIPLE.itemsize // 8:
                        parts.append(_parse_binary(bytes(pending[:whole])))
                        del pending[:whole]
        whole = len(pending) // _BINARY_TRIPLE.itemsize * _BINARY_TRIPLE.itemsize  # the 2-byte trailer stays
        if whole:
            parts.append(_parse_binary(bytes(pending[:whole])))
    else:
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(select_sql)
            while True:
                chunk = _take(cursor, CHUNK_ROWS)
                parts.append((chunk["a"].copy(), chunk["b"].copy(), chunk["v"].copy()))
                if len(chunk) < CHUNK_ROWS:
                    break
        finally:
            cursor.close()
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def _read_pg_arrays(
    conn: Connection, select_sql: str, table: str, key: str, workers: int = 2
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Ranges of ``key`` as binary arrays, fetched by ``workers`` connections at once.

    The connections read one consistent snapshot: ``conn`` exports its snapshot and each
    worker's REPEATABLE READ transaction imports it (as pg_dump's parallel mode does),
    so rows written meanwhile are in all ranges or in none.
    """
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    query = (
        f"SELECT array_agg(a::int8), array_agg(b::int8), array_agg(v::float8) "
        f"FROM ({select_sql} WHERE {key} >= %s AND {key} < %s) AS t(a, b, v)"
    )

    def work(worker: int) -> list[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        fairy = conn.engine.raw_connection()
        raw = fairy.driver_connection
        try:
            raw.isolation_level = IsolationLevel.REPEATABLE_READ
            with raw.cursor(binary=True) as cursor:
                cursor.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                cursor.adapters.register_loader(INT8_ARRAY_OID, _Int8ArrayLoader)
                cursor.adapters.register_loader(FLOAT8_ARRAY_OID, _Float8ArrayLoader)
                low, high = cursor.execute(f"SELECT min({key}), max({key}) FROM {table}").fetchone()
                found = []
                if low is not None:
                    starts = range(low, high + 1, CHUNK_ROWS)
                    for number, start in enumerate(starts):
                        if number % workers == worker:
                            a, b, v = cursor.execute(query, (start, start + CHUNK_ROWS)).fetchone()
                            if a is not None:
                                found.append((number, (a, b, v)))
            return found
        finally:
            raw.rollback()
            raw.isolation_level = None
            fairy.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunks = [chunk for found in pool.map(work, range(workers)) for chunk in found]
    return [part for _, part in sorted(chunks, key=lambda item: item[0])]


INT8_ARRAY_OID, FLOAT8_ARRAY_OID = 1016, 1022  # pg_type oids of int8[] and float8[]


class _NumpyArrayLoader(Loader):
    """A one-dimensional PostgreSQL array without NULLs, in binary form, as a numpy array."""

    format = Format.BINARY
    element: str = ">i8"

    def load(self, data) -> np.ndarray:
        data = bytes(data)
        ndim = int.from_bytes(data[0:4], "big")
        if ndim == 0:
            return np.empty(0, dtype=self.element[1:].replace("i", "int").replace("f", "float"))
        items = np.frombuffer(data, dtype=np.dtype([("length", ">i4"), ("value", self.element)]), offset=12 + 8 * ndim)
        if (items["length"] < 0).any():
            raise ValueError("NULL in an array read by read_triples")
        return items["value"].astype(self.element.replace(">", "="))


class _Int8ArrayLoader(_NumpyArrayLoader):
    element = ">i8"


class _Float8ArrayLoader(_NumpyArrayLoader):
    element = ">f8"


def _parse_binary(body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.frombuffer(body, dtype=_BINARY_TRIPLE)
    if ((rows["l1"] != 8) | (rows["l2"] != 8) | (rows["l3"] != 8)).any():
        raise ValueError("NULL in a column read by read_triples")
    return rows["a"].astype(np.int64), rows["b"].astype(np.int64), rows["v"].astype(np.float64)


def _take(cursor, n: int) -> np.ndarray:
    """Up to ``n`` (int, int, float) rows from a DB-API cursor into a structured array."""
    return np.fromiter(itertools.islice(cursor, n), dtype=_TRIPLE)

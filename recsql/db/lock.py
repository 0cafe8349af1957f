"""One writer at a time: the lock every retrain, activation and prune holds.

PostgreSQL: a session-level advisory lock on a connection held for the duration.
SQLite: an exclusive ``flock`` on a file beside the database.  Either way the operating
system or the server releases it when the process dies, so a crashed writer can never
hold it forever, and a model left ``running`` while nobody holds the lock is dead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text

from recsql.errors import Busy

# pg_advisory_lock key: the bytes of "recsql" as an integer; a namespace of its own
# (recsql.db.engine.make_engine's schema) has a key of its own, derived from its name.
ADVISORY_KEY = int.from_bytes(b"recsql", "big")


def advisory_key(engine: Engine) -> int:
    """The lock key of the engine's recsql namespace (one per PostgreSQL schema)."""
    schema = engine.dialect.default_schema_name
    if schema in (None, "public"):
        return ADVISORY_KEY
    return int.from_bytes(hashlib.blake2b(f"recsql:{schema}".encode(), digest_size=8).digest(), "big", signed=True)
POLL_SECONDS = 0.2
# Server-side TCP keepalives on the lock's connection, so a writer whose host vanished
# (no FIN ever arrives) loses the lock after about idle + interval * count seconds
# instead of the server default of two hours.
KEEPALIVE = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


@contextmanager
def writer_lock(engine: Engine, wait: float = 0.0, holder: Callable[[], str] = lambda: "") -> Iterator[None]:
    """Hold the writer lock for the block; waits up to ``wait`` seconds, then raises
    :class:`Busy` (whose message ends with ``holder()``, e.g. the running model)."""
    release = _acquire(engine, wait)
    if release is None:
        who = holder()
        raise Busy(
            "another recsql writer (a retrain, activation or prune) holds the lock"
            + (f" ({who})" if who else "")
            + (f" and did not finish within {wait:g} s" if wait else "")
            + "; try again later or pass --wait SECONDS"
        )
    try:
        yield
    finally:
        release()


def lock_is_free(engine: Engine) -> bool:
    """Whether no process holds the writer lock right now (taken and released at once)."""
    release = _acquire(engine, 0.0)
    if release is None:
        return False
    release()
    return True


def _acquire(engine: Engine, wait: float) -> Callable[[], None] | None:
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        release = _try_postgres(engine) if engine.dialect.name == "postgresql" else _try_sqlite(engine)
        if release is not None or time.monotonic() >= deadline:
            return release
        time.sleep(POLL_SECONDS)


def _try_postgres(engine: Engine) -> Callable[[], None] | None:
    conn = engine.connect()
    try:
        key = advisory_key(engine)
        locked = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if locked:
            for name, seconds in KEEPALIVE.items():
                conn.execute(text("SELECT set_config(:name, :value, false)"), {"name": name, "value": str(seconds)})
        conn.commit()
    except BaseException:
        conn.close()
        raise
    if not locked:
        conn.close()
        return None

    def release() -> None:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
        finally:
            conn.close()

    return release


def _try_sqlite(engine: Engine) -> Callable[[], None] | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return lambda: None  # one process, one connection: nobody to exclude
    fd: Any = os.open(f"{database}.recsql-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None

    def release() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return release

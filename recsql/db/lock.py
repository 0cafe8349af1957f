"""One writer at a time: the lock every retrain, activation and prune holds, and proof
that it is still held before each write.

PostgreSQL: an EXCLUSIVE lock on the table ``recsql_lock``, held by a transaction of its
own for the duration.  Taking it needs UPDATE (or DELETE, TRUNCATE) rights on that
table, which the reader role of ``recsql db grant-reader`` lacks, so an application
reading recommendations can never stop retrains (an advisory lock anyone could take).
The lock's transaction writes nothing, so it holds back no VACUUM.  SQLite: an exclusive
``flock`` on a file beside the database.  Either way the server or the operating system
releases it when the process dies, so a crashed writer can never hold it forever, and a
model left ``running`` while nobody holds the lock is dead.

A lock can also be lost while its process lives: an administrator ends the lock's
connection (``pg_terminate_backend``), a network cut does, or the lock file is deleted.
Another writer may then start and reclaim this one's run.  :meth:`WriterLock.check`
fails with :class:`~recsql.errors.LockLost` once that happened; the store calls it
before every write of a run and inside the transaction that activates a model, so a
writer that lost its lock stops before it changes anything.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from recsql.db.settings import set_config_sql
from recsql.db.timeouts import LOCK_NOT_AVAILABLE, RAW_ERRORS_OPTION
from recsql.errors import Busy, DatabaseUnavailable, LockLost

LOCK_TABLE = "recsql_lock"
POLL_SECONDS = 0.2
# Server-side TCP keepalives on the lock's connection, so a writer whose host vanished
# (no FIN ever arrives) loses the lock after about idle + interval * count seconds
# instead of the server default of two hours.  The lock's transaction is idle for as
# long as the retrain computes: the idle-in-transaction timeout may not end it.
SESSION = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
    "idle_in_transaction_session_timeout": "0",
}
LOST = (
    "recsql lost its writer lock: its connection to the database ended (ended by an administrator, "
    "a network cut or a server timeout), so another writer may have started; "
    "this run stopped before writing or activating anything and the active model is unchanged"
)


class WriterLock:
    """The writer lock, while held.  :meth:`check` raises LockLost once it is not."""

    def __init__(self, engine: Engine, release: Callable[[], None], verify: Callable[[Connection | None], bool]):
        self.engine = engine
        self._release = release
        self._verify = verify

    def check(self, conn: Connection | None = None) -> None:
        """Raise :class:`LockLost` unless this process still holds the lock.  Given the
        connection of a transaction about to commit a write, the check runs in that
        transaction, so the write commits only if the lock was held when it was made."""
        if not self._verify(conn):
            raise LockLost(LOST)

    def release(self) -> None:
        self._release()


@contextmanager
def writer_lock(engine: Engine, wait: float = 0.0, holder: Callable[[], str] = lambda: "") -> Iterator[WriterLock]:
    """Hold the writer lock for the block; waits up to ``wait`` seconds, then raises
    :class:`Busy` (whose message ends with ``holder()``, e.g. the running model)."""
    lock = _acquire(engine, wait, _try_postgres if engine.dialect.name == "postgresql" else _try_sqlite)
    if lock is None:
        who = holder()
        raise Busy(
            "another recsql writer (a retrain, activation or prune) holds the lock"
            + (f" ({who})" if who else "")
            + (f" and did not finish within {wait:g} s" if wait else "")
            + "; try again later or pass --wait SECONDS"
        )
    try:
        yield lock
    finally:
        lock.release()


def lock_is_free(engine: Engine) -> bool:
    """Whether no process holds the writer lock right now (taken and released at once);
    False when this role may not take it (a reader cannot tell, so claims nothing)."""
    try:
        lock = _acquire(engine, 0.0, _try_postgres if engine.dialect.name == "postgresql" else _try_sqlite)
    except DatabaseUnavailable:
        return False
    if lock is None:
        return False
    lock.release()
    return True


@contextmanager
def setup_lock(engine: Engine, wait: float) -> Iterator[None]:
    """One process at a time creates recsql's tables in a fresh database, before the
    table the writer lock lives in exists: a PostgreSQL advisory lock (one key per
    namespace), or the SQLite lock file."""
    lock = _acquire(engine, wait, _try_advisory if engine.dialect.name == "postgresql" else _try_sqlite)
    if lock is None:
        raise Busy(f"another process is setting up recsql's tables and did not finish within {wait:g} s")
    try:
        yield
    finally:
        lock.release()


def _acquire(engine: Engine, wait: float, attempt: Callable[[Engine], WriterLock | None]) -> WriterLock | None:
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        lock = attempt(engine)
        if lock is not None or time.monotonic() >= deadline:
            return lock
        time.sleep(POLL_SECONDS)


_HELD_SQL = text(
    "SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = to_regclass(:t) "
    "AND pid = :pid AND mode = 'ExclusiveLock' AND granted"
)


def _try_postgres(engine: Engine) -> WriterLock | None:
    conn = engine.connect().execution_options(**{RAW_ERRORS_OPTION: True})
    try:
        conn.begin()
        conn.exec_driver_sql(set_config_sql(SESSION, local=True))
        conn.exec_driver_sql(f"LOCK TABLE {LOCK_TABLE} IN EXCLUSIVE MODE NOWAIT")
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    except DBAPIError as exc:
        conn.close()
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return None
        if getattr(exc.orig, "sqlstate", None) == "42501":  # insufficient_privilege
            raise DatabaseUnavailable(
                f"this role may not take recsql's writer lock (UPDATE on {LOCK_TABLE}): retrains, activations "
                "and prunes need the role that owns recsql's tables, not a reader's"
            ) from None
        raise
    except BaseException:
        conn.close()
        raise

    def verify(where: Connection | None) -> bool:
        try:
            if where is not None:
                return where.execute(_HELD_SQL, {"t": LOCK_TABLE, "pid": pid}).first() is not None
            with engine.connect() as other:
                return other.execute(_HELD_SQL, {"t": LOCK_TABLE, "pid": pid}).first() is not None
        except DBAPIError:
            if where is not None:
                raise  # the caller's own transaction failed: that error is the one to show
            return False

    def release() -> None:
        try:
            conn.rollback()  # ends the lock's transaction: the lock goes with it
        except DBAPIError:
            pass  # its connection already ended, and the lock with it
        finally:
            conn.close()

    return WriterLock(engine, release, verify)


# The set-up lock's pg_advisory_lock key: the bytes of "recsql" as an integer; a
# namespace of its own (recsql.db.engine.make_engine's schema) has a key of its own.
ADVISORY_KEY = int.from_bytes(b"recsql", "big")


def advisory_key(engine: Engine) -> int:
    """The set-up lock key of the engine's recsql namespace (one per PostgreSQL schema)."""
    schema = engine.dialect.default_schema_name
    if schema in (None, "public"):
        return ADVISORY_KEY
    return int.from_bytes(hashlib.blake2b(f"recsql:{schema}".encode(), digest_size=8).digest(), "big", signed=True)


def _try_advisory(engine: Engine) -> WriterLock | None:
    conn = engine.connect()
    try:
        key = advisory_key(engine)
        locked = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
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
        except DBAPIError:
            pass
        finally:
            conn.close()

    return WriterLock(engine, release, lambda _conn: True)


def _try_sqlite(engine: Engine) -> WriterLock | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return WriterLock(engine, lambda: None, lambda _conn: True)  # one process, one connection
    path = f"{database}.recsql-lock"
    fd: Any = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same_file(fd, path):  # deleted between our open and flock: lock the new one
        os.close(fd)
        return _try_sqlite(engine)

    def release() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # Deleting the lock file while a writer holds it would let the next writer lock a new
    # file beside this one: the writer that held the old one has lost its lock.
    return WriterLock(engine, release, lambda _conn: _same_file(fd, path))


def _same_file(fd: Any, path: str) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False

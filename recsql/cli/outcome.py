"""What a command's ending means, the same for the ``recsql`` command and the cron jobs.

Exit codes: 0 done; 1 a problem the operator can fix (bad input, unknown id, outdated
schema, unreachable database, another writer running, a stopped run); 2 a usage error
(an unknown option or a bad value, as click reports it); 3 an unexpected error, which is
a bug in recsql (one line; ``-v`` shows the traceback); 141 (128 + SIGPIPE, as other
tools end) the reader of the output closed it early (``recsql models | head``).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

from recsql.errors import RecsqlError

OK, PROBLEM, USAGE, BUG, CLOSED = 0, 1, 2, 3, 141


def _driver_errors() -> tuple[type[BaseException], ...]:
    """The database drivers' own errors, which reach us from the bulk paths (COPY, raw
    cursors); psycopg only where it is installed."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def problem(exc: BaseException) -> str | None:
    """The one line for an error the operator can fix, or None for anything else (a bug)."""
    if isinstance(exc, RecsqlError):
        return str(exc)
    if isinstance(exc, (SQLAlchemyError, *_driver_errors())):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"database error: {reason[0] if reason else type(exc).__name__}"
    return None

"""What a command's ending means, the same for the ``recsql`` command and the cron jobs.

Exit codes: 0 done; 1 a problem the operator can fix (bad input, unknown id, outdated
schema, unreachable database, another writer running, a stopped run); 2 a usage error
(an unknown option or a bad value, as click reports it); 3 an unexpected error, which is
a bug in recsql (one line; ``-v`` shows the traceback); 141 (128 + SIGPIPE, as other
tools end) the reader of the output closed it early (``recsql models | head``).

``recsql db status`` is a health check, and exits for an operator's alerts
(:func:`health_code`; when several hold, the lowest wins): 0 healthy; 4 the schema is
not at the newest revision (an upgrade pending, no recsql schema at all, or a revision
from a newer recsql); 5 no active model; 6 the active model is older than
``--max-age``.  Its errors (an unreachable database) stay 1.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

from recsql.db.health import Health
from recsql.errors import RecsqlError

OK, PROBLEM, USAGE, BUG, CLOSED = 0, 1, 2, 3, 141
# `recsql db status`'s failed checks, most urgent first.
SCHEMA_NOT_CURRENT, NO_ACTIVE_MODEL, MODEL_TOO_OLD = 4, 5, 6


def health_code(health: Health) -> int:
    """The exit code of a health check: the lowest of the failed checks' codes, else OK."""
    if health.upgrade_pending:
        return SCHEMA_NOT_CURRENT
    if health.active_model is None:
        return NO_ACTIVE_MODEL
    if health.too_old:
        return MODEL_TOO_OLD
    return OK


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

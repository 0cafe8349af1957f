"""What cron needs from a recsql job: exit 0 on success; on failure one line on stderr
and a non-zero exit (1: a problem to fix, such as an outdated schema, an unreachable
database or a bad argument; 2: an unexpected error, which is a bug in recsql).

The jobs call recsql's Python API directly (see migrate.py and retrain.py).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable

import click
import psycopg
from sqlalchemy.exc import SQLAlchemyError

from recsql import RecsqlError


def run(name: str, job: Callable[[], object]) -> int:
    """Run ``job`` and turn its outcome into cron's exit code and one line on failure."""
    try:
        job()
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{name} failed: interrupted (SIGINT); the previous model stays active", file=sys.stderr)
        return 130
    except click.ClickException as exc:  # a bad argument
        print(f"{name} failed: {exc.format_message()}", file=sys.stderr)
        return 1
    except RecsqlError as exc:
        print(f"{name} failed: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, psycopg.Error, sqlite3.Error) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"{name} failed: database error: {reason}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - cron needs one line, not a traceback
        print(f"{name} failed: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0

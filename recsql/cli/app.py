"""The root of the ``recsql`` command: the group ``cli``, its global options, and the
helpers every command module uses (the command's engine, printing unless ``--quiet``).

The command groups live in their own modules (:mod:`~recsql.cli.db`,
:mod:`~recsql.cli.imports`, :mod:`~recsql.cli.training`, :mod:`~recsql.cli.serve`,
:mod:`~recsql.cli.models`, :mod:`~recsql.cli.admin`, :mod:`~recsql.cli.demo`), each
registering its commands on ``cli``; importing :mod:`recsql.cli` imports them all.
Each command is one library call, its flags named like the parameters, and its
docstring ends with an example; ``tests/test_docs.py`` checks that each command is
documented in the README.  Listings print through :mod:`recsql.cli.output` (a table, or
JSON with ``--json``).  Errors a user can cause (RecsqlError) print one line and exit 1;
database errors likewise; only bugs show a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import Engine

import recsql
from recsql.cli.outcome import BUG, CLOSED, problem
from recsql.db.engine import DEFAULT_URL, SCHEMA_ENV, URL_ENV, resolve_url_source
from recsql.db.timeouts import DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_ENV
from recsql.errors import Terminated
from recsql.logs import configure_logging

log = logging.getLogger("recsql.cli")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Group(click.Group):
    """Global options anywhere on the line; errors a user can cause as one line and exit
    code 1, bugs as one line and exit code 3 (:mod:`recsql.cli.outcome`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _globals_first(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # Whoever read the output stopped early (`recsql models | head`): end quietly,
            # as other command-line tools do, without Python's complaint at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(CLOSED)
        except Exception as exc:
            message = problem(exc)
            if message is not None:
                log.debug("failed", exc_info=True)
                raise click.ClickException(message) from None
            if _verbose(ctx):
                log.error("unexpected error", exc_info=True)
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc} (a bug in recsql; run with -v for the traceback)",
                err=True,
            )
            ctx.exit(BUG)


# Options of the root command that may also come after the subcommand.
_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")
_GLOBAL_VALUES = ("--database-url", "--schema", "--lock-timeout")


def _globals_first(args: list[str]) -> list[str]:
    """Move the global options to the front, so `recsql similar 3 -q` and
    `recsql db upgrade --database-url URL` mean what they say."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in _GLOBAL_FLAGS or arg.split("=", 1)[0] in _GLOBAL_VALUES and "=" in arg:
            front.append(arg)
        elif arg in _GLOBAL_VALUES and i + 1 < len(args):
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("verbose"))


def url_of(ctx: click.Context) -> str:
    """The database URL the command runs against (--database-url, else the environment's)."""
    return ctx.find_root().params["database_url"]


def schema_of(ctx: click.Context) -> str | None:
    return ctx.find_root().params["schema"]


def lock_timeout_of(ctx: click.Context) -> float | None:
    return ctx.find_root().params["lock_timeout"]


def is_quiet(ctx: click.Context) -> bool:
    """Whether --quiet was given: print only results and errors."""
    return bool(ctx.find_root().params["quiet"])


def engine_of(ctx: click.Context) -> Engine:
    """The command's engine, disposed when the command ends (a CLI run needs no pool)."""
    engine = recsql.connect(url_of(ctx), schema=schema_of(ctx), lock_timeout=lock_timeout_of(ctx))
    ctx.call_on_close(engine.dispose)
    return engine


def say(ctx: click.Context, message: str = "") -> None:
    """Print ``message`` unless --quiet (results a script reads are printed with click.echo)."""
    if not is_quiet(ctx):
        click.echo(message)


def stacked(*options: Decorator) -> Decorator:
    """One decorator applying ``options`` in the order written (as if stacked above a command)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


class _Id(click.ParamType):
    """A movie or user id, passed on as typed (never stripped): the library reads it as the
    application's key in a catalogue of text ids, where "7" is the key "7" and never
    recsql's integer 7, and as recsql's integer in a catalogue of integer ids."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)


ID = _Id()


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    default=None,
    help=f"SQLAlchemy URL of the database (else ${URL_ENV}, else $DATABASE_URL, else {DEFAULT_URL}).",
)
@click.option(
    "--schema",
    envvar=SCHEMA_ENV,
    default=None,
    help=f"recsql's own namespace in the database (or ${SCHEMA_ENV}): a PostgreSQL schema, "
    "or on SQLite a file beside the database's.",
)
@click.option(
    "--lock-timeout",
    envvar=LOCK_TIMEOUT_ENV,
    type=float,
    default=None,
    metavar="SECONDS",
    help=f"How long to wait for a lock another session holds before giving up (or ${LOCK_TIMEOUT_ENV}) "
    f"[default: {DEFAULT_LOCK_TIMEOUT:g}].",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only results and errors.")
@click.option("--verbose", "-v", is_flag=True, help="Log each step with a timestamp on stderr.")
@click.version_option(recsql.__version__, prog_name="recsql")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    schema: str | None,
    lock_timeout: float | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Recommendations from the ratings in your SQL database, read back with SQL.

    \b
    Example:
        recsql import ratings ratings.csv && recsql train && recsql similar 3
    """
    configure_logging(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    url, where = resolve_url_source(database_url)
    ctx.params["database_url"] = url
    ctx.meta["database_url_source"] = where
    if where == "default" and not quiet and ctx.invoked_subcommand not in (None, "demo"):
        click.echo(f"recsql: using {url} (set --database-url, ${URL_ENV} or $DATABASE_URL to choose)", err=True)


def main() -> None:
    stop_on_signals()
    cli(prog_name="recsql")


def stop_on_signals() -> None:
    """Turn SIGTERM (systemd, `timeout`, cron's kill) and SIGINT (Ctrl-C) into one
    exception, so a retrain in progress is marked failed with the reason instead of
    vanishing mid-run, and the command ends with one line and exit code 1."""

    def terminated(number: int, _frame: object) -> None:
        raise Terminated(f"stopped by {signal.Signals(number).name}; the previous model stays active")

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)

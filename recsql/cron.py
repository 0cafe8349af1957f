"""The jobs cron and deploys run, from an installed package:

    python -m recsql.cron migrate [--database-url URL] [--revision REV]
    python -m recsql.cron retrain [options of `recsql train`]

Both log with timestamps on stderr (``-v`` for every phase) and end with the exit codes
of :mod:`recsql.cli.outcome`: 0 done, 1 a problem to fix, 2 a usage error, 3 a bug;
on failure one timestamped line on stderr, and a retrain leaves the previous model active.
``retrain`` prints one JSON line (the new model_id, counts, metrics and phase seconds);
``migrate`` prints the revision reached.  ``scripts/retrain.py`` and
``scripts/migrate.py`` are these, for a checkout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

import click

import recsql
from recsql.cli.app import stop_on_signals
from recsql.cli.outcome import BUG, OK, PROBLEM, USAGE, problem
from recsql.cli.output import to_json
from recsql.cli.training import train as train_command
from recsql.logs import configure_logging

# Named, not __name__: run as `python -m recsql.cron` that is "__main__", outside the
# "recsql" logger that configure_logging gives its timestamped handler.
log = logging.getLogger("recsql.cron")


def run(name: str, job: Callable[[], object]) -> int:
    """Run ``job``; its outcome as an exit code and, on failure, one timestamped line on
    stderr (a log record of level ERROR)."""
    try:
        job()
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.UsageError as exc:
        log.error("%s failed: %s", name, exc.format_message())
        return USAGE
    except Exception as exc:
        message = problem(exc)
        if message is None:
            log.error(
                "%s failed: unexpected %s: %s (a bug in recsql)",
                name,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.INFO),
            )
            return BUG
        log.error("%s failed: %s", name, message)
        return PROBLEM
    return OK


def retrain(argv: list[str]) -> None:
    """Parse ``argv`` with `recsql train`'s own options, train, print one JSON line."""
    options = train_command.make_context("retrain", list(argv)).params
    engine = recsql.connect()
    try:
        result = recsql.train(engine, **options)
    finally:
        engine.dispose()
    print(
        to_json(
            {
                "model_id": result.model_id,
                "algorithm": result.algorithm,
                "n_users": result.n_users,
                "n_movies": result.n_movies,
                "n_ratings": result.n_ratings,
                "metrics": result.metrics,
                "timings": result.timings,
            },
            indent=None,
        )
    )


def migrate(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="migrate", description="Migrate recsql's schema.")
    parser.add_argument("--database-url", default=None, help="default: $RECSQL_DATABASE_URL, then $DATABASE_URL")
    parser.add_argument("--revision", default="head")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on errors
        if exc.code:
            raise click.UsageError("see --help") from None
        raise click.exceptions.Exit(0) from None
    print(recsql.upgrade(args.database_url, args.revision))


JOBS: dict[str, Callable[[list[str]], None]] = {"retrain": retrain, "migrate": migrate}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    args = [a for a in args if a not in ("-v", "--verbose")]
    configure_logging(logging.INFO if verbose else logging.WARNING)
    if not args or args[0] not in JOBS:
        print(f"usage: python -m recsql.cron {{{'|'.join(JOBS)}}} [-v] [options]", file=sys.stderr)
        return USAGE
    stop_on_signals()
    name, rest = args[0], args[1:]
    return run(name, lambda: JOBS[name](rest))


if __name__ == "__main__":
    sys.exit(main())

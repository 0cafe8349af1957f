"""``recsql events``: append a file of what applications logged, and prune old events."""

from __future__ import annotations

import click

import recsql
from recsql.cli.app import Group, cli, engine_of, say


@cli.group(cls=Group)
def events() -> None:
    """What applications log: movies shown to users, and what the users did with them.

    Applications append them with a plain SQL INSERT (see docs/howto/experiments.md) or in
    batches with recsql.log_events; `recsql models online` compares two models on them.

    \b
    Example:
        recsql events import events.csv
        recsql events prune --older-than-days 90
    """


@events.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def events_import(ctx: click.Context, path: str) -> None:
    """Append the events of a CSV file whose header names its columns.

    Columns: kind (shown, clicked, watched, rated, bought), user_id, movie_id, and
    optionally at (Unix seconds; empty: now), model_id, list, rank, value.  One
    transaction: a bad line imports nothing.

    \b
    Example:
        recsql events import events.csv
    """
    count = recsql.import_events(engine_of(ctx), path)
    say(ctx, f"imported {count} events from {path}")


@events.command("prune")
@click.option(
    "--older-than-days",
    type=float,
    required=True,
    help="Delete the events older than this many days (the retention; run it from cron).",
)
@click.pass_context
def events_prune(ctx: click.Context, older_than_days: float) -> None:
    """Delete old events, in short transactions, so the table's growth stays bounded.

    \b
    Example:
        recsql events prune --older-than-days 90
    """
    count = recsql.prune_events(engine_of(ctx), older_than_days)
    say(ctx, f"deleted {count} events older than {older_than_days:g} days")

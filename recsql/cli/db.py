"""``recsql db``: create, upgrade, downgrade or remove recsql's tables (Alembic
migrations), grant roles access, and check the database's health (``db status``)."""

from __future__ import annotations

import click

import recsql
from recsql.cli.app import Group, cli, engine_of, lock_timeout_of, say, schema_of, url_of
from recsql.cli.outcome import OK, health_code
from recsql.cli.output import json_option, to_json


@cli.group(cls=Group, name="db")
def db_group() -> None:
    """Create, upgrade or remove recsql's tables (Alembic migrations).

    \b
    Example:
        recsql --database-url postgresql://app@localhost/shop db upgrade
    """


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Revision to migrate to.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Create recsql's tables and views, or migrate them to the newest schema.

    \b
    Example:
        recsql db upgrade
    """
    reached = recsql.upgrade(url_of(ctx), revision, schema=schema_of(ctx), lock_timeout=lock_timeout_of(ctx))
    say(ctx, f"database schema at revision {reached}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Downgrade to base even though recsql's tables hold rows (deletes them).")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str, yes: bool) -> None:
    """Migrate down to REVISION (rows are kept for the way back up); `base` removes
    everything recsql created, nothing else.

    \b
    Example:
        recsql db downgrade 0006_list_scores
    """
    reached = recsql.downgrade(url_of(ctx), revision, yes=yes, schema=schema_of(ctx), lock_timeout=lock_timeout_of(ctx))
    say(ctx, f"database schema at revision {reached or 'base (recsql removed)'}")


@db_group.command("grant-reader")
@click.argument("role")
@click.pass_context
def db_grant_reader(ctx: click.Context, role: str) -> None:
    """Let ROLE read recommendations and nothing else (PostgreSQL; run again after `db upgrade`).

    \b
    Example:
        recsql db grant-reader shop_web
    """
    granted = recsql.grant_reader(engine_of(ctx), role)
    say(ctx, f"{role} may now SELECT from {', '.join(granted)}")


@db_group.command("grant-source")
@click.argument("role")
@click.argument("tables", nargs=-1, required=True)
@click.pass_context
def db_grant_source(ctx: click.Context, role: str, tables: tuple[str, ...]) -> None:
    """Let ROLE read TABLES of the application and nothing else, and let recsql read as
    ROLE (PostgreSQL; then say `role = "ROLE"` in the source mapping's [ratings]).

    \b
    Example:
        recsql db grant-source shop_source reviews products
    """
    granted = recsql.grant_source(engine_of(ctx), role, list(tables))
    say(
        ctx,
        f"{role} may now SELECT from {', '.join(granted)}; recsql reads its sources as {role} "
        f'when the mapping says role = "{role}"',
    )


@db_group.command("status")
@click.option(
    "--max-age",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Unhealthy (exit 6) when the active model is older than this.",
)
@json_option
@click.pass_context
def db_status(ctx: click.Context, max_age: float | None, as_json: bool) -> None:
    """Check the database's health: schema revision (and the newest one this recsql
    knows), the active model and its age, the last failed training run, a running
    traffic split.  Changes nothing.

    Exits 0 when healthy; 4 when the schema is not at the newest revision; 5 when no
    model is active; 6 when the active model is older than --max-age (the lowest wins).

    \b
    Example:
        recsql db status
        recsql db status --json --max-age 90000
    """
    health = recsql.health(url_of(ctx), schema=schema_of(ctx), max_age=max_age)
    code = health_code(health)
    if as_json:
        click.echo(
            to_json(
                {
                    "revision": health.revision,
                    "newest": health.newest,
                    "upgrade_pending": health.upgrade_pending,
                    "active_model": health.active_model,
                    "last_failure": health.last_failure,
                    "split": health.split,
                    "healthy": health.healthy,
                    "problems": health.problems,
                    "exit_code": code,
                }
            )
        )
    else:
        _echo_health(health)
    if code != OK:
        ctx.exit(code)


def _echo_health(health: recsql.Health) -> None:
    """``db status`` as lines: revisions, the active model, the last failure, the verdict."""
    current, head = health.revision, health.newest
    click.echo(f"current: {current or 'none (no recsql tables)'}")
    click.echo(f"newest:  {head}")
    if current != head:
        click.echo("run `recsql db upgrade` to migrate" if current else "created on first use")
    active, failure = health.active_model, health.last_failure
    if active is None:
        click.echo("active model: none")
    else:
        ratings = "?" if active.n_ratings is None else active.n_ratings
        click.echo(
            f"active model: {active.model_id} ({active.algorithm}), "
            f"{_duration(active.age_seconds)} old, {ratings} ratings"
        )
    if failure is not None:
        when = f" at {failure.finished_at:%Y-%m-%d %H:%M:%S} UTC" if failure.finished_at else ""
        after = ", after the active model" if failure.after_active else ""
        reason = ((failure.error or "").strip().splitlines() or ["no error recorded"])[0]
        click.echo(f"last failure: model {failure.model_id}{when}{after}: {reason}")
    if health.split is not None:
        split = health.split
        click.echo(
            f"traffic split {split.split_id}: model {split.model_b} serves {split.share:.2%} of the users beside "
            f"model {split.model_a}, since {split.started_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    click.echo("healthy" if health.healthy else "unhealthy: " + "; ".join(health.problems))


def _duration(seconds: float) -> str:
    """A time span in the largest unit that keeps it readable: 42 seconds, 12 minutes,
    5.2 hours, 3.1 days."""
    seconds = max(seconds, 0.0)
    if seconds < 90:
        whole = int(seconds)
        return f"{whole} second{'' if whole == 1 else 's'}"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"

"""The admin's view of a model: ``recsql inspect movie|user|model`` (one movie, one
user, or the model itself as the model sees them) and ``recsql report`` (one HTML page
of plots and checks)."""

from __future__ import annotations

import dataclasses

import click

import recsql
from recsql.cli.app import ID, Group, cli, engine_of, say
from recsql.cli.models import show_record
from recsql.cli.output import Column, json_option, show, to_json


@cli.group(cls=Group, name="inspect")
def inspect_group() -> None:
    """Look inside a model: one movie, one user, or the model itself.

    \b
    Example:
        recsql inspect movie 50
        recsql inspect user 1 --json
        recsql inspect model
    """


_model_option = click.option(
    "--model", "model_id", type=int, default=None, help="The model version to inspect (default: the active one)."
)


def _features(values: list[float]) -> str:
    return " ".join(f"{v:+.3f}" for v in values)


@inspect_group.command("movie")
@click.argument("movie_id", type=ID)
@_model_option
@click.option("--limit", type=int, default=10, show_default=True, help="Similar movies to list.")
@json_option
@click.pass_context
def inspect_movie(ctx: click.Context, movie_id: int | str, model_id: int | None, limit: int, as_json: bool) -> None:
    """Show a movie as a model sees it: ratings, bias, features, similar movies, reach.

    \b
    Example:
        recsql inspect movie 50 --limit 5
    """
    found = recsql.inspect_movie(engine_of(ctx), movie_id, model_id=model_id, limit=limit)
    if as_json:
        click.echo(to_json(found))
        return
    mean = "" if found.mean_rating is None else f", mean {found.mean_rating:.2f}"
    ratings = f"{found.n_ratings} ratings{mean}; "
    say(ctx, f"movie {found.movie_id}: {found.title or '(no title)'} [{found.genres or ''}] in model {found.model_id}")
    say(ctx, f"{ratings}bias {found.bias:+.3f}; on {found.recommended_to} users' recommendations")
    say(ctx, f"features: {_features(found.features)}")
    say(ctx)
    show(
        found.similar,
        [
            Column("rank"),
            Column("movie_id", header="similar"),
            Column("title", align="<"),
            Column("score", format=".4g"),
        ],
        as_json=False,
    )


@inspect_group.command("user")
@click.argument("user_id", type=ID)
@_model_option
@click.option(
    "--because", type=int, default=3, show_default=True, help="Rated movies that explain each recommendation."
)
@json_option
@click.pass_context
def inspect_user(ctx: click.Context, user_id: int | str, model_id: int | None, because: int, as_json: bool) -> None:
    """Show a user as a model sees them: ratings, bias, features, explained recommendations.

    \b
    Example:
        recsql inspect user 1 --because 2
    """
    found = recsql.inspect_user(engine_of(ctx), user_id, model_id=model_id, because=because)
    if as_json:
        click.echo(to_json(found))
        return
    say(ctx, f"user {found.user_id} in model {found.model_id}: {len(found.ratings)} ratings, bias {found.bias:+.3f}")
    say(ctx, f"features: {_features(found.features)}")
    say(ctx)
    rows = [
        {
            "rank": r.rank,
            "movie_id": r.movie_id,
            "title": r.title,
            "predicted_rating": r.predicted_rating,
            "because": "; ".join(f"{b.title or b.movie_id} ({b.rating:g}, {b.contribution:+.3f})" for b in r.because),
        }
        for r in found.recommendations
    ]
    show(
        rows,
        [
            Column("rank"),
            Column("movie_id", header="movie"),
            Column("title", align="<"),
            Column("predicted_rating", header="predicted", format=".3f"),
            Column("because", header="because they rated (rating, contribution)", align="<"),
        ],
        as_json=False,
    )
    say(ctx)
    show(
        found.ratings,
        [Column("movie_id", header="rated"), Column("title", align="<"), Column("rating", format="g")],
        as_json=False,
    )


@inspect_group.command("model")
@click.argument("model_id", type=int, required=False)
@json_option
@click.pass_context
def inspect_model(ctx: click.Context, model_id: int | None, as_json: bool) -> None:
    """Show a model (default: the active one): parameters, metrics, phase seconds, rows and bytes.

    \b
    Example:
        recsql inspect model 3
    """
    found = recsql.inspect_model(engine_of(ctx), model_id)
    if as_json:
        click.echo(to_json({**dataclasses.asdict(found), "model_bytes": found.model_bytes}))
        return
    show_record(found.model)
    say(ctx)
    show(
        found.tables,
        [
            Column("table", align="<"),
            Column("rows"),
            Column("table_rows", header="all models"),
            Column("table_bytes", header="table bytes"),
            Column("model_bytes", header="this model's share"),
        ],
        as_json=False,
    )


@cli.command()
@click.argument("model_id", type=int, required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default="report.html",
    show_default=True,
    help="The HTML file to write.",
)
@click.pass_context
def report(ctx: click.Context, model_id: int | None, out: str) -> None:
    """Write one self-contained HTML page of plots and checks that show whether a model is good.

    Needs matplotlib (pip install 'recsql[plots]').

    \b
    Example:
        recsql report --out report.html
    """
    path = recsql.write_report(engine_of(ctx), out, model_id)
    say(ctx, f"wrote {path}")

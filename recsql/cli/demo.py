"""Synthetic catalogues: ``recsql generate`` fills a database with one (benchmarks, load
tests), ``recsql demo`` trains on one and shows similar movies, no files needed."""

from __future__ import annotations

from typing import Any

import click

import recsql
from recsql.cli.app import cli, engine_of, say, url_of
from recsql.cli.output import show
from recsql.cli.serve import SIMILAR_COLUMNS, say_similar_heading
from recsql.data.synthetic import CHOICES
from recsql.db.keys import ID_KINDS
from recsql.demo import run_demo


@cli.command()
@click.option("--ratings", type=int, required=True, help="Number of distinct (user, movie) ratings.")
@click.option("--users", type=int, required=True)
@click.option("--movies", type=int, required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--replace", is_flag=True, help="Delete the stored ratings first (same transaction).")
@click.option(
    "--ids",
    type=click.Choice(ID_KINDS),
    default="integer",
    show_default=True,
    help="text: every user and movie gets a UUID as its application key.",
)
@click.option(
    "--choices",
    type=click.Choice(CHOICES),
    default="taste",
    show_default=True,
    help="taste: which movies a user rates follows their hidden tastes and popularity; popularity: popularity alone.",
)
@click.pass_context
def generate(ctx: click.Context, **options: Any) -> None:
    """Fill the database with a realistic synthetic catalogue (benchmarks, load tests).

    \b
    Example:
        recsql generate --ratings 1000000 --users 6500 --movies 2400 --seed 0
        recsql generate --ratings 5000000 --users 32500 --movies 30000 --replace
    """
    result = recsql.generate(engine_of(ctx), **options)
    say(
        ctx,
        f"generated {result.ratings} ratings of {result.movies} movies by {result.users} users "
        f"(generate {result.seconds['generate']:.1f} s, load {result.seconds['load']:.1f} s)",
    )


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Train on a built-in synthetic catalogue and show similar movies; no files needed.

    Uses its own SQLite file, recsql-demo.db, unless --database-url names an empty database.

    \b
    Example:
        recsql demo
    """
    explicit = ctx.find_root().meta["database_url_source"] != "default"
    result = run_demo(url_of(ctx) if explicit else None, progress=lambda m: say(ctx, m))
    m = result.result.metrics
    say(
        ctx,
        f"Trained model {result.result.model_id}: train RMSE {m['train_rmse']:.4f}, "
        f"test RMSE {m['test_rmse']:.4f} (20% held out)",
    )
    say(ctx)
    say_similar_heading(ctx, result.movie, len(result.similar))
    show(result.similar, SIMILAR_COLUMNS, as_json=False)
    say(ctx)
    say(ctx, f"Now ask the database yourself:  recsql --database-url {result.database_url} similar 7")

"""The queries an application serves from the active model: ``recsql similar``,
``recommend``, ``explain``, ``predict`` and ``popular``."""

from __future__ import annotations

from typing import Any

import click

import recsql
from recsql.cli.app import ID, cli, engine_of, say
from recsql.cli.output import Column, json_option, show

SIMILAR_COLUMNS = [
    Column("rank"),
    Column("movie_id", header="movie"),
    Column("title", align="<"),
    Column("score", format=".4f"),
    Column("genres", header="genre", align="<"),
]


def _with_keys(rows: list[Any], columns: list[Column]) -> list[Column]:
    """The columns, and the application's keys when the catalogue has them."""
    if any(getattr(r, "movie_key", None) for r in rows):
        return [*columns, Column("movie_key", header="key", align="<")]
    return columns


@cli.command()
@click.argument("movie_id", type=ID)
@click.option("--limit", type=int, default=5, show_default=True)
@json_option
@click.pass_context
def similar(ctx: click.Context, movie_id: int, limit: int, as_json: bool) -> None:
    """List the movies most similar to MOVIE_ID in the active model.

    \b
    Example:
        recsql similar 3 --limit 5
    """
    rec = recsql.Recommender(engine_of(ctx))
    rows = rec.similar(movie_id, limit=limit)
    if not as_json:
        say_similar_heading(ctx, rec.movie(movie_id), len(rows))
    show(rows, _with_keys(rows, SIMILAR_COLUMNS), as_json=as_json)


def say_similar_heading(ctx: click.Context, movie: recsql.MovieInfo, count: int) -> None:
    """The tutorial's words before its list of similar movies."""
    say(ctx, "We are finding movies similar to this movie:")
    say(ctx, f"Movie title: {movie.title or f'(movie {movie.movie_id})'}")
    say(ctx, f"Genre: {movie.genres or '-'}")
    say(ctx)
    say(ctx, f"The {count} most similar movies are:")


def _rating_pair(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[int | str, float]:
    """--rate's MOVIE_ID=RATING pairs as a dict."""
    pairs: dict[int | str, float] = {}
    for value in values:
        movie, sep, rating = value.rpartition("=")[0], "=" in value, value.rpartition("=")[2]
        try:
            pairs[ID.convert(movie, None, None)] = float(rating)
        except ValueError:
            raise click.BadParameter(f"expected MOVIE_ID=RATING, got {value!r}") from None
        if not sep or not movie:
            raise click.BadParameter(f"expected MOVIE_ID=RATING, got {value!r}")
    return pairs


RECOMMENDATION_COLUMNS = [
    Column("rank"),
    Column("movie_id", header="movie"),
    Column("title", align="<"),
    Column("predicted_rating", header="predicted", format=".3f"),
    Column("score", format=".4g"),
    Column("genres", header="genre", align="<"),
]


@cli.command()
@click.argument("user_id", type=ID, required=False)
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--exclude", type=ID, multiple=True, help="A movie id to leave out (repeatable).")
@click.option(
    "--rate",
    "ratings",
    multiple=True,
    callback=_rating_pair,
    metavar="MOVIE_ID=RATING",
    help="A rating of someone the model has not seen (repeatable); no USER_ID needed.",
)
@click.option(
    "--save",
    "save_as",
    type=int,
    default=None,
    help="With --rate: store the folded-in user under this id until the next retrain.",
)
@json_option
@click.pass_context
def recommend(
    ctx: click.Context,
    user_id: int | str | None,
    limit: int,
    exclude: tuple[int | str, ...],
    ratings: dict[int | str, float],
    save_as: int | None,
    as_json: bool,
) -> None:
    """Recommend movies for a user, or for a few ratings of someone new (--rate).

    \b
    Example:
        recsql recommend 42 --limit 10
        recsql recommend --rate 3=5 --rate 9=4 --save 1001
    """
    tell = (lambda _message: None) if as_json else (lambda message: say(ctx, message))
    rec = recsql.Recommender(engine_of(ctx))
    if ratings:
        if user_id is not None:
            raise click.UsageError("give USER_ID or --rate, not both")
        if save_as is not None:
            rows = rec.save_user(save_as, ratings, limit=limit)
            tell(f"user {save_as} saved under the active model until the next retrain")
        else:
            rows = rec.recommend_for_ratings(ratings, limit=limit, exclude=exclude)
    elif user_id is None:
        raise click.UsageError("give USER_ID, or ratings with --rate MOVIE_ID=RATING")
    else:
        if save_as is not None:
            raise click.UsageError("--save goes with --rate")
        rows = rec.recommend(user_id, limit=limit, exclude=exclude)
        if rows and rows[0].source == "popular":
            tell(f"user {user_id} has no ratings in the model: the most popular movies instead")
    if not rows and not as_json:
        say(ctx, "nothing to recommend: every movie is rated or excluded")
        return
    show(rows, _with_keys(rows, RECOMMENDATION_COLUMNS), as_json=as_json)


@cli.command()
@click.argument("user_id", type=ID)
@click.argument("movie_id", type=ID)
@click.option("--limit", type=int, default=5, show_default=True)
@click.pass_context
def explain(ctx: click.Context, user_id: int, movie_id: int, limit: int) -> None:
    """Show which of the user's ratings contributed most to a movie's predicted rating.

    \b
    Example:
        recsql explain 42 7
    """
    rec = recsql.Recommender(engine_of(ctx))
    predicted = rec.predict(user_id, movie_id)
    rows = rec.explain(user_id, movie_id, limit=limit)
    say(ctx, f"user {user_id}, movie {movie_id}: predicted rating {predicted:.3f}")
    show(
        rows,
        [
            Column("movie_id", header="movie"),
            Column("title", align="<"),
            Column("rating", format="g"),
            Column("contribution", format="+.3f"),
        ],
        as_json=False,
    )


@cli.command()
@click.argument("user_id", type=ID)
@click.argument("movie_id", type=ID)
@click.pass_context
def predict(ctx: click.Context, user_id: int, movie_id: int) -> None:
    """Print the active model's predicted rating of a movie by a user.

    \b
    Example:
        recsql predict 42 7
    """
    click.echo(f"{recsql.Recommender(engine_of(ctx)).predict(user_id, movie_id):.4f}")


POPULAR_COLUMNS = [
    Column("rank"),
    Column("movie_id", header="movie"),
    Column("title", align="<"),
    Column("score", format=".3f"),
    Column("n_ratings", header="ratings"),
    Column("mean_rating", header="mean", format=".2f"),
]


@cli.command()
@click.option("--limit", type=int, default=10, show_default=True)
@json_option
@click.pass_context
def popular(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the most popular well-rated movies (what brand-new users are shown).

    \b
    Example:
        recsql popular --limit 10
    """
    rows = recsql.Recommender(engine_of(ctx)).popular(limit)
    show(rows, POPULAR_COLUMNS, as_json=as_json)

"""``recsql import``: ratings or movies from a file, in a built-in format (detected from
the first line) or any CSV layout described by --columns, --delimiter and --no-header."""

from __future__ import annotations

import click

import recsql
from recsql.cli.app import Decorator, Group, cli, engine_of, say, stacked
from recsql.data.files import FORMATS
from recsql.db.keys import ID_KINDS, IdKind


@cli.group(cls=Group, name="import")
def import_group() -> None:
    """Import ratings or movies from a file (format detected from the first line).

    \b
    Example:
        recsql import ratings ml-100k/u.data && recsql import movies ml-100k/u.item
    """


def _format_option(kind: str) -> Decorator:
    """--format, and the options that describe any other CSV layout of ``kind``'s fields."""
    example = "user=customer,movie=item,rating=stars" if kind == "ratings" else "movie=id,title=name,genres=category"
    return stacked(
        click.option(
            "--format",
            type=click.Choice(FORMATS),
            default=None,
            help="A built-in file format (default: detect; not with the layout options).",
        ),
        click.option(
            "--columns",
            metavar="FIELD=COLUMN,...",
            default=None,
            help=f"Which column holds each field: header names, or positions from 1 with --no-header (e.g. {example}).",
        ),
        click.option(
            "--delimiter",
            metavar="CHAR",
            default=None,
            help="The field delimiter: one punctuation character or tab [default: ,].",
        ),
        click.option("--no-header", is_flag=True, help="The file has no header line: --columns gives positions."),
    )


_ids_option = click.option(
    "--ids",
    type=click.Choice(ID_KINDS),
    default=None,
    help="The application's ids: integer, or text (any string, e.g. UUIDs; mapped to integers once). "
    "Default: the catalogue's, else integer.",
)


@import_group.command("ratings")
@click.argument("path", type=click.Path(dir_okay=False))
@_format_option("ratings")
@click.option("--replace", is_flag=True, help="Delete all stored ratings first (same transaction).")
@click.option(
    "--rating-scale",
    metavar="LOW,HIGH",
    help="The catalogue's rating scale (stored; default: the stored one, else the first import's span).",
)
@_ids_option
@click.pass_context
def import_ratings(
    ctx: click.Context,
    path: str,
    format: str | None,
    replace: bool,
    rating_scale: str | None,
    columns: str | None,
    delimiter: str | None,
    no_header: bool,
    ids: IdKind | None,
) -> None:
    """Import ratings from PATH: all of the file or, on any bad line, none of it.

    A rating outside the catalogue's rating scale is a bad line.

    The built-in formats (tutorial, MovieLens, MovieLens 100K) are detected from the
    first line. Any other CSV: --columns maps the fields user, movie, rating (required)
    and time (optional, Unix seconds) to the header's names, case-insensitive; other
    columns are ignored, and a name the header lacks refuses the file (line 1, with the
    header's columns). With --no-header, --columns gives positions from 1 (default:
    user=1,movie=2,rating=3). --delimiter alone reads the built-in headers. Unknown
    fields or malformed pairs are refused with the accepted names; a header the
    detection does not know, with the --columns to add. Fields may be quoted as in the
    built-in formats; UTF-8, or what a byte-order mark says.

    \b
    Example:
        recsql import ratings movie_ratings_data_set.csv --rating-scale 1,5
        recsql import ratings reviews.csv --columns user=customer,movie=item,rating=stars,time=ts --delimiter ';'
        recsql import ratings plain.csv --no-header --columns user=2,movie=1,rating=3
        recsql import ratings export.csv --ids text --columns user=customer_uuid,movie=sku,rating=stars
    """
    result = recsql.import_ratings(
        engine_of(ctx),
        path,
        format=format,
        replace=replace,
        rating_scale=rating_scale,
        columns=columns,
        delimiter=delimiter,
        header=not no_header,
        ids=ids,
    )
    say(ctx, f"imported {result.rows} ratings from {result.path} ({result.format} format)")


@import_group.command("movies")
@click.argument("path", type=click.Path(dir_okay=False))
@_format_option("movies")
@_ids_option
@click.pass_context
def import_movies(
    ctx: click.Context,
    path: str,
    format: str | None,
    columns: str | None,
    delimiter: str | None,
    no_header: bool,
    ids: IdKind | None,
) -> None:
    """Import or update movies (title, genres) from PATH.

    The built-in formats are detected from the first line. Any other CSV: --columns
    maps the fields movie, title (required) and genres (optional) to the header's names,
    or with --no-header to positions from 1 (default: movie=1,title=2,genres=3); the
    rules are those of `recsql import ratings`.

    \b
    Example:
        recsql import movies movies.csv
        recsql import movies catalogue.csv --columns movie=id,title=name,genres=category
    """
    result = recsql.import_movies(
        engine_of(ctx), path, format=format, columns=columns, delimiter=delimiter, header=not no_header, ids=ids
    )
    say(ctx, f"imported {result.rows} movies from {result.path} ({result.format} format)")

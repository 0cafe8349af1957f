"""The ``recsql`` command: one library call per command, flags named like the parameters.

Every command's docstring ends with an example; ``tests/test_docs.py`` checks that each
command is documented in the README.  Listings print through :mod:`recsql.cli.output`
(a table, or JSON with ``--json``).  Errors a user can cause (RecsqlError) print one
line and exit 1; database errors likewise; only bugs show a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import Engine

import recsql
from recsql.cli.outcome import BUG, CLOSED, OK, health_code, problem
from recsql.cli.output import Column, json_option, show, to_json
from recsql.data.files import FORMATS
from recsql.data.keys import ID_KINDS, IdKind
from recsql.data.matrix import DUPLICATE_POLICIES
from recsql.db.engine import DEFAULT_URL, SCHEMA_ENV, URL_ENV, resolve_url_source
from recsql.db.timeouts import DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_ENV
from recsql.demo import run_demo
from recsql.engines import ENGINES
from recsql.errors import Terminated
from recsql.evaluation.tuning import require_matplotlib
from recsql.logs import configure_logging
from recsql.model.outputs import LIST_METRICS
from recsql.model.ranking import DEFAULT_ITEM_REGULARIZATION
from recsql.model.solvers import DEFAULT_SOLVER, SOLVERS
from recsql.progress import Phases, terminal
from recsql.threads import THREADS_ENV

log = logging.getLogger("recsql.cli")


class _Group(click.Group):
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
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc} "
                       "(a bug in recsql; run with -v for the traceback)", err=True)
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


class _Id(click.ParamType):
    """A movie or user id, passed on as typed (never stripped): the library reads it as the
    application's key in a catalogue of text ids, where "7" is the key "7" and never
    recsql's integer 7, and as recsql's integer in a catalogue of integer ids."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)


ID = _Id()


def _with_keys(rows: list[Any], columns: list[Column]) -> list[Column]:
    """The columns, and the application's keys when the catalogue has them."""
    if any(getattr(r, "movie_key", None) for r in rows):
        return [*columns, Column("movie_key", header="key", align="<")]
    return columns


def _url(ctx: click.Context) -> str:
    return ctx.find_root().params["database_url"]


def _schema(ctx: click.Context) -> str | None:
    return ctx.find_root().params["schema"]


def _lock_timeout(ctx: click.Context) -> float | None:
    return ctx.find_root().params["lock_timeout"]


def _engine(ctx: click.Context) -> Engine:
    """The command's engine, disposed when the command ends (a CLI run needs no pool)."""
    engine = recsql.connect(_url(ctx), schema=_schema(ctx), lock_timeout=_lock_timeout(ctx))
    ctx.call_on_close(engine.dispose)
    return engine


def _say(ctx: click.Context, message: str = "") -> None:
    if not ctx.find_root().params["quiet"]:
        click.echo(message)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    default=None,
    help=f"SQLAlchemy URL of the database (else ${URL_ENV}, else $DATABASE_URL, else {DEFAULT_URL}).",
)
@click.option("--schema", envvar=SCHEMA_ENV, default=None,
              help=f"recsql's own namespace in the database (or ${SCHEMA_ENV}): a PostgreSQL schema, "
                   "or on SQLite a file beside the database's.")
@click.option("--lock-timeout", envvar=LOCK_TIMEOUT_ENV, type=float, default=None, metavar="SECONDS",
              help=f"How long to wait for a lock another session holds before giving up (or ${LOCK_TIMEOUT_ENV}) "
                   f"[default: {DEFAULT_LOCK_TIMEOUT:g}].")
@click.option("--quiet", "-q", is_flag=True, help="Print only results and errors.")
@click.option("--verbose", "-v", is_flag=True, help="Log each step with a timestamp on stderr.")
@click.version_option(recsql.__version__, prog_name="recsql")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, schema: str | None, lock_timeout: float | None, quiet: bool,
        verbose: bool) -> None:
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


# ------------------------------------------------------------------------------ db


@cli.group(cls=_Group, name="db")
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
    reached = recsql.upgrade(_url(ctx), revision, schema=_schema(ctx), lock_timeout=_lock_timeout(ctx))
    _say(ctx, f"database schema at revision {reached}")


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
    reached = recsql.downgrade(_url(ctx), revision, yes=yes, schema=_schema(ctx), lock_timeout=_lock_timeout(ctx))
    _say(ctx, f"database schema at revision {reached or 'base (recsql removed)'}")


@db_group.command("grant-reader")
@click.argument("role")
@click.pass_context
def db_grant_reader(ctx: click.Context, role: str) -> None:
    """Let ROLE read recommendations and nothing else (PostgreSQL; run again after `db upgrade`).

    \b
    Example:
        recsql db grant-reader shop_web
    """
    granted = recsql.grant_reader(_engine(ctx), role)
    _say(ctx, f"{role} may now SELECT from {', '.join(granted)}")


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
    granted = recsql.grant_source(_engine(ctx), role, list(tables))
    _say(ctx, f"{role} may now SELECT from {', '.join(granted)}; recsql reads its sources as {role} "
              f"when the mapping says role = \"{role}\"")


@db_group.command("status")
@click.option("--max-age", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Unhealthy (exit 6) when the active model is older than this.")
@json_option
@click.pass_context
def db_status(ctx: click.Context, max_age: float | None, as_json: bool) -> None:
    """Check the database's health: schema revision (and the newest one this recsql
    knows), the active model and its age, the last failed training run.  Changes nothing.

    Exits 0 when healthy; 4 when the schema is not at the newest revision; 5 when no
    model is active; 6 when the active model is older than --max-age (the lowest wins).

    \b
    Example:
        recsql db status
        recsql db status --json --max-age 90000
    """
    health = recsql.health(_url(ctx), schema=_schema(ctx), max_age=max_age)
    code = health_code(health)
    if as_json:
        click.echo(to_json({
            "revision": health.revision, "newest": health.newest, "upgrade_pending": health.upgrade_pending,
            "active_model": health.active_model, "last_failure": health.last_failure,
            "healthy": health.healthy, "problems": health.problems, "exit_code": code,
        }))
    else:
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
            click.echo(f"active model: {active.model_id} ({active.algorithm}), "
                       f"{_duration(active.age_seconds)} old, {ratings} ratings")
        if failure is not None:
            when = f" at {failure.finished_at:%Y-%m-%d %H:%M:%S} UTC" if failure.finished_at else ""
            after = ", after the active model" if failure.after_active else ""
            reason = ((failure.error or "").strip().splitlines() or ["no error recorded"])[0]
            click.echo(f"last failure: model {failure.model_id}{when}{after}: {reason}")
        click.echo("healthy" if health.healthy else "unhealthy: " + "; ".join(health.problems))
    if code != OK:
        ctx.exit(code)


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


# -------------------------------------------------------------------------- import


@cli.group(cls=_Group, name="import")
def import_group() -> None:
    """Import ratings or movies from a file (format detected from the first line).

    \b
    Example:
        recsql import ratings ml-100k/u.data && recsql import movies ml-100k/u.item
    """


def _format_option(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--format, and the options that describe any other CSV layout of ``kind``'s fields."""
    example = "user=customer,movie=item,rating=stars" if kind == "ratings" else "movie=id,title=name,genres=category"
    options = [
        click.option("--format", type=click.Choice(FORMATS), default=None,
                     help="A built-in file format (default: detect; not with the layout options)."),
        click.option("--columns", metavar="FIELD=COLUMN,...", default=None,
                     help=f"Which column holds each field: header names, or positions from 1 with --no-header "
                          f"(e.g. {example})."),
        click.option("--delimiter", metavar="CHAR", default=None,
                     help="The field delimiter: one punctuation character or tab [default: ,]."),
        click.option("--no-header", is_flag=True, help="The file has no header line: --columns gives positions."),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_ids_option = click.option(
    "--ids", type=click.Choice(ID_KINDS), default=None,
    help="The application's ids: integer, or text (any string, e.g. UUIDs; mapped to integers once). "
         "Default: the catalogue's, else integer.")


@import_group.command("ratings")
@click.argument("path", type=click.Path(dir_okay=False))
@_format_option("ratings")
@click.option("--replace", is_flag=True, help="Delete all stored ratings first (same transaction).")
@click.option("--rating-scale", metavar="LOW,HIGH",
              help="The catalogue's rating scale (stored; default: the stored one, else the first import's span).")
@_ids_option
@click.pass_context
def import_ratings(ctx: click.Context, path: str, format: str | None, replace: bool, rating_scale: str | None,
                   columns: str | None, delimiter: str | None, no_header: bool, ids: IdKind | None) -> None:
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
    result = recsql.import_ratings(_engine(ctx), path, format=format, replace=replace, rating_scale=rating_scale,
                                   columns=columns, delimiter=delimiter, header=not no_header, ids=ids)
    _say(ctx, f"imported {result.rows} ratings from {result.path} ({result.format} format)")


@import_group.command("movies")
@click.argument("path", type=click.Path(dir_okay=False))
@_format_option("movies")
@_ids_option
@click.pass_context
def import_movies(ctx: click.Context, path: str, format: str | None,
                  columns: str | None, delimiter: str | None, no_header: bool, ids: IdKind | None) -> None:
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
    result = recsql.import_movies(_engine(ctx), path, format=format,
                                  columns=columns, delimiter=delimiter, header=not no_header, ids=ids)
    _say(ctx, f"imported {result.rows} movies from {result.path} ({result.format} format)")


# --------------------------------------------------------------------------- train


def _solver_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that fits a model takes (train, evaluate, tune)."""
    options = [
        click.option("--solver", type=click.Choice(sorted(SOLVERS)), default=DEFAULT_SOLVER, show_default=True,
                     help="als: biased MF, Bayesian by default (accurate); cg: the tutorial's."),
        click.option("--features", type=int, default=None, help="Latent features [als: 6, cg: 15]."),
        click.option("--regularization", type=float, default=None, help="L2 penalty [als: 0.1, cg: 0.1]."),
        click.option("--max-iterations", type=int, default=None, help="ALS sweeps [10] or CG iterations [3000]."),
        click.option("--samples", type=int, default=None,
                     help="als: Gibbs samples averaged [chosen by the data's size: 120 up to "
                          "about 300,000 ratings, fewer above, 0 (plain ALS) from about 6.7 million]; "
                          "0 for plain ALS."),
        click.option("--implicit/--no-implicit", default=None,
                     help="als: use which movies each user rated (SVD++-style) [on when sampling]."),
        click.option("--time-budget", type=float, default=None,
                     help="als: seconds the fit may take; the draws are chosen to fit [default: by size]."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seeds the start and the split."),
        click.option("--duplicates", type=click.Choice(DUPLICATE_POLICIES), default="max", show_default=True,
                     help="How repeated (user, movie) ratings are resolved."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _list_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What orders the lists (train and evaluate)."""
    options = [
        click.option("--metric", type=click.Choice(LIST_METRICS), default="items", show_default=True,
                     help="items: an item-item model of what users pick, blended with the ratings; "
                          "cosine: the rating model's features; l1: the tutorial's difference score "
                          "(slow on big catalogues)."),
        click.option("--item-regularization", type=float, default=DEFAULT_ITEM_REGULARIZATION, show_default=True,
                     help="items: the item-item model's L2 penalty."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the fit runs (train and evaluate)."""
    options = [
        click.option("--engine", "engine_name", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="local: this process; spark: Apache Spark MLlib's ALS (needs recsql[spark] and Java)."),
        click.option("--spark-master", default=None,
                     help="spark: the master URL (local[N], spark://host:7077, yarn, k8s://...) "
                          "[default: local[N], N the threads]."),
        click.option("--spark-conf", multiple=True, metavar="KEY=VALUE",
                     help="spark: a Spark setting (spark.executor.memory=8g) or recsql's "
                          "(recsql.jdbc.partitions=64); repeat for more."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@_solver_options
@_engine_options
@click.option("--test-fraction", type=float, default=None, help="Hold out this share of ratings to test on.")
@click.option("--test-file", type=click.Path(dir_okay=False), default=None, help="Score this ratings file.")
@click.option("--similar-k", type=int, default=20, show_default=True, help="Similar movies stored per movie.")
@_list_options
@click.option("--recommend-n", type=int, default=10, show_default=True,
              help="Recommendations stored per user (unrated movies, best first).")
@click.option("--source", type=click.Path(dir_okay=False), default=None,
              help="TOML file mapping the application's own ratings (and items) tables; see README.")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="With --test-fraction: store a model refitted on every rating after scoring "
                   "(--no-refit stores the scored fit, which lacks the held-out ratings).")
@click.option("--keep", type=int, default=3, show_default=True,
              help="Complete models whose rows are kept (the new one included); older ones are pruned.")
@click.option("--wait", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another retrain, activation or prune to finish.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help=f"Threads and database connections to use [default: ${THREADS_ENV}, else every core "
                   "this process may use].")
@click.pass_context
def train(ctx: click.Context, **options: Any) -> None:
    """Train a new model from the stored ratings and make it the active one.

    \b
    Example:
        recsql train --test-fraction 0.2
        recsql train --solver cg --features 15 --regularization 0.1
        recsql train --engine spark --spark-master spark://head:7077 --spark-conf spark.executor.memory=8g
    """
    quiet = ctx.find_root().params["quiet"]
    result = recsql.train(_engine(ctx), show_progress=not quiet and terminal(), **options)
    m = result.metrics
    _say(ctx, f"fit: {result.plan}")
    _say(ctx, Phases.summary_of(result.timings))
    # The new model's id is a result: printed even with --quiet.
    click.echo(f"model {result.model_id} ({result.algorithm}) is active: {result.n_users} users, "
               f"{result.n_movies} movies, {result.n_ratings} ratings")
    click.echo(f"train RMSE {m['train_rmse']:.6f}  MAE {m['train_mae']:.6f}")
    if "test_rmse" in m:
        skipped = f" ({m['n_test_skipped']} of unknown users/movies skipped)" if m["n_test_skipped"] else ""
        click.echo(f"test  RMSE {m['test_rmse']:.6f}  MAE {m['test_mae']:.6f} on {m['n_test']} ratings{skipped}")
        click.echo(_ranking_line(m))
    if result.refitted:
        click.echo(f"the metrics above scored a fit on {m['scored_fit_ratings']} ratings; the stored model was "
                   f"refitted on all {result.n_ratings} (--no-refit to store the scored fit)")


def _ranking_line(m: dict[str, Any]) -> str:
    return (f"test  precision@10 {m['precision_at_10']:.4f}  recall@10 {m['recall_at_10']:.4f}  "
            f"NDCG@10 {m['ndcg_at_10']:.4f}  similar movies NDCG@10 {m['similar_ndcg_at_10']:.4f}  "
            f"coverage {m['coverage']:.4f}\n"
            f"lists popularity lift {m['popularity_lift']:.2f}  Gini {m['gini']:.4f}  novelty {m['novelty']:.3f} bits  "
            f"intra-list diversity {m['intra_list_diversity']:.4f}")


def _holdout_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--train", "train_file", type=click.Path(dir_okay=False), default=None,
                     help="Train on this file instead of the database's ratings."),
        click.option("--test", "test_file", type=click.Path(dir_okay=False), default=None,
                     help="Score this fixed file (e.g. MovieLens u1.test)."),
        click.option("--test-fraction", type=float, default=None, help="Hold out this random share."),
        click.option("--folds", type=int, default=None, help="K-fold cross-validation."),
        click.option("--source", type=click.Path(dir_okay=False), default=None,
                     help="TOML file mapping the application's own ratings table."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _evaluation_engine(ctx: click.Context, train_file: str | None) -> Engine | None:
    return None if train_file else _engine(ctx)


METRIC_COLUMNS = [
    Column("train_rmse", format=".4f"), Column("train_mae", format=".4f"),
    Column("test_rmse", format=".4f"), Column("test_mae", format=".4f"),
    Column("precision_at_10", format=".4f"), Column("recall_at_10", format=".4f"),
    Column("ndcg_at_10", format=".4f"), Column("similar_ndcg_at_10", format=".4f"),
    Column("coverage", format=".4f"), Column("fit_seconds", format=".4f"),
]


@cli.command()
@_solver_options
@_engine_options
@_holdout_options
@click.option("--similar-k", type=int, default=20, show_default=True, help="Similar movies per movie to score.")
@_list_options
@json_option
@click.pass_context
def evaluate(ctx: click.Context, train_file: str | None, as_json: bool, **options: Any) -> None:
    """Fit on training ratings, score held-out ones; nothing is written.

    \b
    Example:
        recsql evaluate --train ml-100k/u1.base --test ml-100k/u1.test
        recsql evaluate --folds 5 --solver cg --regularization 10 --json
        recsql evaluate --engine spark --train ml-100k/u1.base --test ml-100k/u1.test
    """
    result = recsql.evaluate(_evaluation_engine(ctx, train_file), train_file=train_file, **options)
    rows = [{"fold": str(i + 1), **f.metrics, "fit_seconds": f.fit_seconds} for i, f in enumerate(result.folds)]
    if len(rows) > 1:
        rows.append({"fold": "mean", **result.mean})
    document = {"solver": result.solver, "params": result.params, "folds": rows[: len(result.folds)],
                "mean": result.mean}
    show(rows, [Column("fold", align="<"), *METRIC_COLUMNS], as_json=as_json, document=document)


def _number_list(kind: type) -> Any:
    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list[Any]:
        try:
            return [kind(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of numbers, got {value!r}") from None
    return parse


TUNE_COLUMNS = [
    Column("features"), Column("regularization", format="g"), Column("test_rmse", format=".4f"),
    Column("test_mae", format=".4f"), Column("train_rmse", format=".4f"),
    Column("ndcg_at_10", header="ndcg@10", format=".4f"), Column("fit_seconds", header="fit_s", format=".2f"),
]


@cli.command()
@click.option("--features", default="4,6,10", show_default=True, callback=_number_list(int),
              help="Comma-separated feature counts.")
@click.option("--regularization", default="0.03,0.1,0.3", show_default=True, callback=_number_list(float),
              help="Comma-separated regularization values.")
@click.option("--solver", type=click.Choice(sorted(SOLVERS)), default=DEFAULT_SOLVER, show_default=True)
@click.option("--max-iterations", type=int, default=None)
@click.option("--samples", type=int, default=None, help="als: Gibbs samples (0: plain ALS).")
@click.option("--seed", type=int, default=0, show_default=True)
@_holdout_options
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of test RMSE against regularization (needs recsql[plots]).")
@json_option
@click.pass_context
def tune(ctx: click.Context, train_file: str | None, plot: str | None, as_json: bool, **options: Any) -> None:
    """Grid-search features x regularization; print a table sorted by test RMSE.

    \b
    Example:
        recsql tune --solver cg --features 5,10,15 --regularization 0.1,1,10 --folds 3 --plot tune.png
    """
    if plot:
        require_matplotlib()
    quiet = as_json or ctx.find_root().params["quiet"]
    rows = recsql.tune(
        _evaluation_engine(ctx, train_file), train_file=train_file,
        progress=None if quiet else lambda r: click.echo(
            f"features {r.features:>3}  regularization {r.regularization:<8g} "
            f"test RMSE {r.evaluation.mean['test_rmse']:.4f}"),
        **options,
    )
    records = [{"features": r.features, "regularization": r.regularization, **r.evaluation.mean} for r in rows]
    show(records, TUNE_COLUMNS, as_json=as_json)
    if plot:
        path = recsql.plot_tuning(rows, plot)
        if not quiet:
            click.echo(f"plot written to {path}")


# --------------------------------------------------------------------------- read


SIMILAR_COLUMNS = [
    Column("rank"), Column("movie_id", header="movie"), Column("title", align="<"),
    Column("score", format=".4f"), Column("genres", header="genre", align="<"),
]


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
    rec = recsql.Recommender(_engine(ctx))
    rows = rec.similar(movie_id, limit=limit)
    if not as_json:
        _say_similar_heading(ctx, rec.movie(movie_id), len(rows))
    show(rows, _with_keys(rows, SIMILAR_COLUMNS), as_json=as_json)


def _say_similar_heading(ctx: click.Context, movie: recsql.MovieInfo, count: int) -> None:
    """The tutorial's words before its list of similar movies."""
    _say(ctx, "We are finding movies similar to this movie:")
    _say(ctx, f"Movie title: {movie.title or f'(movie {movie.movie_id})'}")
    _say(ctx, f"Genre: {movie.genres or '-'}")
    _say(ctx)
    _say(ctx, f"The {count} most similar movies are:")


def _rating_pair(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[int | str, float]:
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
    Column("rank"), Column("movie_id", header="movie"), Column("title", align="<"),
    Column("predicted_rating", header="predicted", format=".3f"), Column("score", format=".4g"),
    Column("genres", header="genre", align="<"),
]


@cli.command()
@click.argument("user_id", type=ID, required=False)
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--exclude", type=ID, multiple=True, help="A movie id to leave out (repeatable).")
@click.option("--rate", "ratings", multiple=True, callback=_rating_pair, metavar="MOVIE_ID=RATING",
              help="A rating of someone the model has not seen (repeatable); no USER_ID needed.")
@click.option("--save", "save_as", type=int, default=None,
              help="With --rate: store the folded-in user under this id until the next retrain.")
@json_option
@click.pass_context
def recommend(ctx: click.Context, user_id: int | str | None, limit: int, exclude: tuple[int | str, ...],
              ratings: dict[int | str, float], save_as: int | None, as_json: bool) -> None:
    """Recommend movies for a user, or for a few ratings of someone new (--rate).

    \b
    Example:
        recsql recommend 42 --limit 10
        recsql recommend --rate 3=5 --rate 9=4 --save 1001
    """
    say = (lambda _message: None) if as_json else (lambda message: _say(ctx, message))
    rec = recsql.Recommender(_engine(ctx))
    if ratings:
        if user_id is not None:
            raise click.UsageError("give USER_ID or --rate, not both")
        if save_as is not None:
            rows = rec.save_user(save_as, ratings, limit=limit)
            say(f"user {save_as} saved under the active model until the next retrain")
        else:
            rows = rec.recommend_for_ratings(ratings, limit=limit, exclude=exclude)
    elif user_id is None:
        raise click.UsageError("give USER_ID, or ratings with --rate MOVIE_ID=RATING")
    else:
        if save_as is not None:
            raise click.UsageError("--save goes with --rate")
        rows = rec.recommend(user_id, limit=limit, exclude=exclude)
        if rows and rows[0].source == "popular":
            say(f"user {user_id} has no ratings in the model: the most popular movies instead")
    if not rows and not as_json:
        _say(ctx, "nothing to recommend: every movie is rated or excluded")
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
    rec = recsql.Recommender(_engine(ctx))
    predicted = rec.predict(user_id, movie_id)
    rows = rec.explain(user_id, movie_id, limit=limit)
    _say(ctx, f"user {user_id}, movie {movie_id}: predicted rating {predicted:.3f}")
    show(rows, [Column("movie_id", header="movie"), Column("title", align="<"), Column("rating", format="g"),
                Column("contribution", format="+.3f")], as_json=False)


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
    click.echo(f"{recsql.Recommender(_engine(ctx)).predict(user_id, movie_id):.4f}")


POPULAR_COLUMNS = [
    Column("rank"), Column("movie_id", header="movie"), Column("title", align="<"), Column("score", format=".3f"),
    Column("n_ratings", header="ratings"), Column("mean_rating", header="mean", format=".2f"),
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
    rows = recsql.Recommender(_engine(ctx)).popular(limit)
    show(rows, POPULAR_COLUMNS, as_json=as_json)


MODEL_COLUMNS = [
    Column("model_id", header="id"), Column("status", align="<"), Column("algorithm", header="solver", align="<"),
    Column("features", header="k"), Column("stored_features", header="stored k"),
    Column("regularization", header="lambda"), Column("n_ratings", header="ratings"),
    Column("train_rmse", format=".4f"), Column("test_rmse", format=".4f"),
    Column("created_at", header="created", align="<"), Column("error", align="<"),
]


@cli.group(cls=_Group, invoke_without_command=True)
@json_option
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List model versions (training runs), newest first, with their parameters and metrics.

    \b
    Example:
        recsql models --json
        recsql models show 3
    """
    if ctx.invoked_subcommand is not None:
        return
    found = recsql.list_models(_engine(ctx))
    if not found and not as_json:
        _say(ctx, "no training runs yet; run `recsql train`")
        return
    rows = [{**vars(m), **{k: m.params.get(k) for k in ("features", "regularization")},
             "stored_features": m.stored_features,
             **{k: (m.metrics or {}).get(k) for k in ("train_rmse", "test_rmse")}} for m in found]
    show(rows, MODEL_COLUMNS, as_json=as_json, document=found)


@models.command("show")
@click.argument("model_id", type=int)
@json_option
@click.pass_context
def models_show(ctx: click.Context, model_id: int, as_json: bool) -> None:
    """Show one model: status, parameters, metrics, phase seconds and rows per table.

    \b
    Example:
        recsql models show 3 --json
    """
    engine = _engine(ctx)
    model = recsql.show_model(engine, model_id)
    counts = recsql.output_counts(engine, model_id)
    if as_json:
        click.echo(to_json({**dataclasses.asdict(model), "rows": counts}))
        return
    _show_record(model, {"rows.": counts})
    scored = (model.metrics or {}).get("scored_fit_ratings")
    if (model.metrics or {}).get("refit"):
        _say(ctx, f"the metrics scored a fit on {scored} ratings (the rest held out); the stored model was "
                  f"refitted on all {model.n_ratings}")


def _show_record(model: recsql.ModelInfo, more: dict[str, dict[str, Any]] | None = None) -> None:
    """A model's record as name/value lines: its fields, then params., metrics. and
    seconds. (per-sweep lists left to --json), then ``more`` sections."""
    fields = {k: v for k, v in dataclasses.asdict(model).items() if k not in ("params", "metrics", "timings")}
    sections = [("", fields), ("params.", model.params), ("metrics.", model.metrics or {}),
                ("seconds.", model.timings or {}), *(more or {}).items()]
    show([{"name": prefix + name, "value": value} for prefix, values in sections for name, value in values.items()
          if not isinstance(value, list)],
         [Column("name", align="<"), Column("value", align="<")], as_json=False)


@models.command("activate")
@click.argument("model_id", type=int)
@click.option("--wait", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another retrain, activation or prune to finish.")
@click.pass_context
def models_activate(ctx: click.Context, model_id: int, wait: float) -> None:
    """Make a complete model the active one: a ready one, or a retired one (a rollback).

    \b
    Example:
        recsql models activate 2
    """
    recsql.activate_model(_engine(ctx), model_id, wait=wait)
    _say(ctx, f"model {model_id} is active")


@models.command("prune")
@click.option("--keep", type=int, default=3, show_default=True,
              help="Complete models whose rows are kept, the active one included.")
@click.option("--wait", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another retrain, activation or prune to finish.")
@click.pass_context
def models_prune(ctx: click.Context, keep: int, wait: float) -> None:
    """Delete the rows of failed models and of all but the KEEP newest complete ones.

    The models' rows stay, marked pruned; the active model is never pruned.

    \b
    Example:
        recsql models prune --keep 2
    """
    pruned = recsql.prune_models(_engine(ctx), keep=keep, wait=wait)
    _say(ctx, f"pruned {len(pruned)} models" + (f": {', '.join(map(str, pruned))}" if pruned else ""))


@models.command("diff")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option("--movies", type=int, default=10, show_default=True,
              help="How many of the movies whose similar movies changed most to list.")
@json_option
@click.pass_context
def models_diff(ctx: click.Context, a: int, b: int, movies: int, as_json: bool) -> None:
    """Compare two models: metrics side by side, how users' lists and movies' neighbours changed.

    What to check before `recsql models activate B`.

    \b
    Example:
        recsql models diff 3 4
    """
    diff = recsql.diff_models(_engine(ctx), a, b, movies=movies)
    if as_json:
        click.echo(to_json(diff))
        return
    verdict = {True: "better", False: "worse", None: ""}
    show([{"metric": m.name, "a": m.a, "b": m.b, "change": None if m.a is None or m.b is None else m.b - m.a,
           "verdict": verdict[m.better]} for m in diff.metrics],
         [Column("metric", align="<"), Column("a", header=f"model {a}", format=".6g"),
          Column("b", header=f"model {b}", format=".6g"), Column("change", format="+.4g"),
          Column("verdict", header="B is", align="<")], as_json=False)
    _say(ctx)
    _say(ctx, f"recommendations: {diff.users_changed} of {diff.users_compared} users' top {diff.n} changed; "
              f"mean overlap@{diff.n} {diff.mean_overlap:.3f}")
    _say(ctx, f"similar movies: mean overlap {diff.mean_similar_overlap:.3f} over {diff.movies_compared} movies; "
              "changed most:")
    show(diff.most_changed, [Column("movie_id", header="movie"), Column("title", align="<"),
                             Column("overlap", format=".2f"), Column("n_ratings", header="ratings")], as_json=False)


@cli.group(cls=_Group, name="inspect")
def inspect_group() -> None:
    """Look inside a model: one movie, one user, or the model itself.

    \b
    Example:
        recsql inspect movie 50
        recsql inspect user 1 --json
        recsql inspect model
    """


_model_option = click.option("--model", "model_id", type=int, default=None,
                             help="The model version to inspect (default: the active one).")


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
    found = recsql.inspect_movie(_engine(ctx), movie_id, model_id=model_id, limit=limit)
    if as_json:
        click.echo(to_json(found))
        return
    mean = "" if found.mean_rating is None else f", mean {found.mean_rating:.2f}"
    ratings = f"{found.n_ratings} ratings{mean}; "
    _say(ctx, f"movie {found.movie_id}: {found.title or '(no title)'} [{found.genres or ''}] in model {found.model_id}")
    _say(ctx, f"{ratings}bias {found.bias:+.3f}; on {found.recommended_to} users' recommendations")
    _say(ctx, f"features: {_features(found.features)}")
    _say(ctx)
    show(found.similar, [Column("rank"), Column("movie_id", header="similar"), Column("title", align="<"),
                         Column("score", format=".4g")], as_json=False)


@inspect_group.command("user")
@click.argument("user_id", type=ID)
@_model_option
@click.option("--because", type=int, default=3, show_default=True,
              help="Rated movies that explain each recommendation.")
@json_option
@click.pass_context
def inspect_user(ctx: click.Context, user_id: int | str, model_id: int | None, because: int, as_json: bool) -> None:
    """Show a user as a model sees them: ratings, bias, features, explained recommendations.

    \b
    Example:
        recsql inspect user 1 --because 2
    """
    found = recsql.inspect_user(_engine(ctx), user_id, model_id=model_id, because=because)
    if as_json:
        click.echo(to_json(found))
        return
    _say(ctx, f"user {found.user_id} in model {found.model_id}: {len(found.ratings)} ratings, bias {found.bias:+.3f}")
    _say(ctx, f"features: {_features(found.features)}")
    _say(ctx)
    rows = [{"rank": r.rank, "movie_id": r.movie_id, "title": r.title, "predicted_rating": r.predicted_rating,
             "because": "; ".join(f"{b.title or b.movie_id} ({b.rating:g}, {b.contribution:+.3f})" for b in r.because)}
            for r in found.recommendations]
    show(rows, [Column("rank"), Column("movie_id", header="movie"), Column("title", align="<"),
                Column("predicted_rating", header="predicted", format=".3f"),
                Column("because", header="because they rated (rating, contribution)", align="<")], as_json=False)
    _say(ctx)
    show(found.ratings, [Column("movie_id", header="rated"), Column("title", align="<"),
                         Column("rating", format="g")], as_json=False)


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
    found = recsql.inspect_model(_engine(ctx), model_id)
    if as_json:
        click.echo(to_json({**dataclasses.asdict(found), "model_bytes": found.model_bytes}))
        return
    _show_record(found.model)
    _say(ctx)
    show(found.tables, [Column("table", align="<"), Column("rows"), Column("table_rows", header="all models"),
                        Column("table_bytes", header="table bytes"),
                        Column("model_bytes", header="this model's share")], as_json=False)


@cli.command()
@click.argument("model_id", type=int, required=False)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default="report.html", show_default=True,
              help="The HTML file to write.")
@click.pass_context
def report(ctx: click.Context, model_id: int | None, out: str) -> None:
    """Write one self-contained HTML page of plots and checks that show whether a model is good.

    Needs matplotlib (pip install 'recsql[plots]').

    \b
    Example:
        recsql report --out report.html
    """
    path = recsql.write_report(_engine(ctx), out, model_id)
    _say(ctx, f"wrote {path}")


@cli.command()
@click.option("--ratings", type=int, required=True, help="Number of distinct (user, movie) ratings.")
@click.option("--users", type=int, required=True)
@click.option("--movies", type=int, required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--replace", is_flag=True, help="Delete the stored ratings first (same transaction).")
@click.option("--ids", type=click.Choice(ID_KINDS), default="integer", show_default=True,
              help="text: every user and movie gets a UUID as its application key.")
@click.pass_context
def generate(ctx: click.Context, **options: Any) -> None:
    """Fill the database with a realistic synthetic catalogue (benchmarks, load tests).

    \b
    Example:
        recsql generate --ratings 1000000 --users 6500 --movies 2400 --seed 0
    """
    result = recsql.generate(_engine(ctx), **options)
    _say(ctx, f"generated {result.ratings} ratings of {result.movies} movies by {result.users} users "
              f"(generate {result.seconds['generate']:.1f} s, load {result.seconds['load']:.1f} s)")


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
    result = run_demo(_url(ctx) if explicit else None, progress=lambda m: _say(ctx, m))
    m = result.result.metrics
    _say(ctx, f"Trained model {result.result.model_id}: train RMSE {m['train_rmse']:.4f}, "
              f"test RMSE {m['test_rmse']:.4f} (20% held out)")
    _say(ctx)
    _say_similar_heading(ctx, result.movie, len(result.similar))
    show(result.similar, SIMILAR_COLUMNS, as_json=False)
    _say(ctx)
    _say(ctx, f"Now ask the database yourself:  recsql --database-url {result.database_url} similar 7")


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

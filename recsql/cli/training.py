"""``recsql train``, ``evaluate`` and ``tune``: fit models on the ratings, store one or
score held-out ratings, and the options they share (solver, lists, backend, hold-out)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Engine

import recsql
from recsql.algorithms.outputs import LIST_METRICS
from recsql.algorithms.solvers import DEFAULT_SOLVER, SOLVERS
from recsql.backends import BACKENDS
from recsql.cli.app import Decorator, cli, engine_of, is_quiet, say, stacked
from recsql.cli.output import Column, json_option, show
from recsql.data.matrix import DUPLICATE_POLICIES
from recsql.evaluation.baselines import BASELINES
from recsql.evaluation.splits import SPLITS
from recsql.evaluation.tuning import require_matplotlib
from recsql.progress import Phases, terminal
from recsql.threads import THREADS_ENV


class _AliasedOption(click.Option):
    """An option whose names after the first are deprecated aliases: they parse as the
    first does, but help and error messages name only the first."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names

    def get_error_hint(self, ctx: click.Context | None) -> str:
        return f"'{self.opts[0]}'"


# The options every command that fits a model takes (train, evaluate, tune).
_solver_options: Decorator = stacked(
    click.option(
        "--solver",
        type=click.Choice(sorted(SOLVERS)),
        default=DEFAULT_SOLVER,
        show_default=True,
        help="als: biased MF, Bayesian by default (accurate); cg: the tutorial's.",
    ),
    click.option("--features", type=int, default=None, help="Latent features [als: 6, cg: 15]."),
    click.option("--regularization", type=float, default=None, help="L2 penalty [als: 0.1, cg: 0.1]."),
    click.option("--max-iterations", type=int, default=None, help="ALS sweeps [10] or CG iterations [3000]."),
    click.option(
        "--samples",
        type=int,
        default=None,
        help="als: Gibbs samples averaged [chosen by the data's size: 120 up to "
        "about 300,000 ratings, fewer above, 0 (plain ALS) from about 6.7 million]; "
        "0 for plain ALS.",
    ),
    click.option(
        "--implicit/--no-implicit",
        default=None,
        help="als: use which movies each user rated (SVD++-style) [on when sampling].",
    ),
    click.option(
        "--time-budget",
        type=float,
        default=None,
        help="als: seconds the fit may take; the draws are chosen to fit [default: by size].",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seeds the start and the split."),
    click.option(
        "--duplicates",
        type=click.Choice(DUPLICATE_POLICIES),
        default="max",
        show_default=True,
        help="How repeated (user, movie) ratings are resolved.",
    ),
)

# What orders the lists (train and evaluate).
_list_options: Decorator = stacked(
    click.option(
        "--metric",
        type=click.Choice(LIST_METRICS),
        default="items",
        show_default=True,
        help="items: an item-item model of what users pick, blended with the ratings; "
        "cosine: the rating model's features; l1: the tutorial's difference score "
        "(slow on big catalogues).",
    ),
    click.option(
        "--item-regularization",
        type=float,
        default=None,
        help="items: the item-item model's L2 penalty (EASE's lambda).  [default: chosen per retrain "
        "on a held-back share of the ratings; the choice is stored in the model's params]",
    ),
)

# Where the fit runs (train and evaluate).  --engine is the old name of --backend, still
# accepted and left out of the help.
_backend_options: Decorator = stacked(
    click.option(
        "--backend",
        "--engine",
        "backend",
        cls=_AliasedOption,
        type=click.Choice(tuple(BACKENDS)),
        default="local",
        show_default=True,
        help="local: this process; spark: Apache Spark MLlib's ALS (needs recsql[spark] and Java).",
    ),
    click.option(
        "--spark-master",
        default=None,
        help="spark: the master URL (local[N], spark://host:7077, yarn, k8s://...) [default: local[N], N the threads].",
    ),
    click.option(
        "--spark-conf",
        multiple=True,
        metavar="KEY=VALUE",
        help="spark: a Spark setting (spark.executor.memory=8g) or recsql's "
        "(recsql.jdbc.partitions=64); repeat for more.",
    ),
)

# Which ratings are scored (evaluate and tune).
_holdout_options: Decorator = stacked(
    click.option(
        "--train",
        "train_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Train on this file instead of the database's ratings.",
    ),
    click.option(
        "--test",
        "test_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Score this fixed file (e.g. MovieLens u1.test).",
    ),
    click.option("--test-fraction", type=float, default=None, help="Hold out this random share."),
    click.option("--folds", type=int, default=None, help="K-fold cross-validation."),
    click.option(
        "--split",
        type=click.Choice(SPLITS),
        default="random",
        show_default=True,
        help="time: hold out the latest --test-fraction; leave-last-n: each user's latest --last-n.",
    ),
    click.option("--last-n", type=int, default=None, help="With --split leave-last-n: ratings per user (default 1)."),
    click.option(
        "--source",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML file mapping the application's own ratings table.",
    ),
)


@cli.command()
@_solver_options
@_backend_options
@click.option("--test-fraction", type=float, default=None, help="Hold out this share of ratings to test on.")
@click.option("--test-file", type=click.Path(dir_okay=False), default=None, help="Score this ratings file.")
@click.option("--similar-k", type=int, default=20, show_default=True, help="Similar movies stored per movie.")
@_list_options
@click.option(
    "--recommend-n",
    type=int,
    default=10,
    show_default=True,
    help="Recommendations stored per user (unrated movies, best first).",
)
@click.option(
    "--source",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file mapping the application's own ratings (and items) tables; see README.",
)
@click.option(
    "--refit/--no-refit",
    default=True,
    show_default=True,
    help="With --test-fraction: store a model refitted on every rating after scoring "
    "(--no-refit stores the scored fit, which lacks the held-out ratings).",
)
@click.option(
    "--keep",
    type=int,
    default=3,
    show_default=True,
    help="Complete models whose rows are kept (the new one included); older ones are pruned.",
)
@click.option(
    "--activate/--no-activate",
    default=True,
    show_default=True,
    help="Make the new model the active one (--no-activate keeps it aside: a model B for `recsql models split`).",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for another retrain, activation or prune to finish.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help=f"Threads and database connections to use [default: ${THREADS_ENV}, else every core this process may use].",
)
@click.pass_context
def train(ctx: click.Context, **options: Any) -> None:
    """Train a new model from the stored ratings and make it the active one.

    \b
    Example:
        recsql train --test-fraction 0.2
        recsql train --solver cg --features 15 --regularization 0.1
        recsql train --no-activate   # a candidate for `recsql models split`
        recsql train --backend spark --spark-master spark://head:7077 --spark-conf spark.executor.memory=8g
    """
    result = recsql.train(engine_of(ctx), show_progress=not is_quiet(ctx) and terminal(), **options)
    m = result.metrics
    say(ctx, f"fit: {result.plan}")
    say(ctx, Phases.summary_of(result.timings))
    # The new model's id is a result: printed even with --quiet.
    click.echo(
        f"model {result.model_id} ({result.algorithm}) is "
        f"{'active' if result.activated else 'kept aside, not active'}: {result.n_users} users, "
        f"{result.n_movies} movies, {result.n_ratings} ratings"
    )
    if result.ended_split is not None:
        say(ctx, ended_split_line(result.ended_split))
    click.echo(f"train RMSE {m['train_rmse']:.6f}  MAE {m['train_mae']:.6f}")
    if "test_rmse" in m:
        skipped = f" ({m['n_test_skipped']} of unknown users/movies skipped)" if m["n_test_skipped"] else ""
        click.echo(f"test  RMSE {m['test_rmse']:.6f}  MAE {m['test_mae']:.6f} on {m['n_test']} ratings{skipped}")
        click.echo(_ranking_line(m))
    if result.refitted:
        click.echo(
            f"the metrics above scored a fit on {m['scored_fit_ratings']} ratings; the stored model was "
            f"refitted on all {result.n_ratings} (--no-refit to store the scored fit)"
        )


def ended_split_line(split: recsql.Split) -> str:
    """What an activation says when it ended a traffic split."""
    return (
        f"ended the traffic split of model {split.model_a} and model {split.model_b} "
        f"({split.share:.0%} to {split.model_b}): every user gets the active model now"
    )


def _ranking_line(m: dict[str, Any]) -> str:
    return (
        f"test  precision@10 {m['precision_at_10']:.4f}  recall@10 {m['recall_at_10']:.4f}  "
        f"NDCG@10 {m['ndcg_at_10']:.4f}  similar movies NDCG@10 {m['similar_ndcg_at_10']:.4f}  "
        f"coverage {m['coverage']:.4f}\n"
        f"lists popularity lift {m['popularity_lift']:.2f}  Gini {m['gini']:.4f}  novelty {m['novelty']:.3f} bits  "
        f"intra-list diversity {m['intra_list_diversity']:.4f}"
    )


def _evaluation_engine(ctx: click.Context, train_file: str | None) -> Engine | None:
    """The database to read ratings from: none when --train names a file."""
    return None if train_file else engine_of(ctx)


METRIC_COLUMNS = [
    Column("train_rmse", format=".4f"),
    Column("train_mae", format=".4f"),
    Column("test_rmse", format=".4f"),
    Column("test_mae", format=".4f"),
    Column("precision_at_10", format=".4f"),
    Column("recall_at_10", format=".4f"),
    Column("ndcg_at_10", format=".4f"),
    Column("similar_ndcg_at_10", format=".4f"),
    Column("coverage", format=".4f"),
    Column("fit_seconds", format=".4f"),
]


@cli.command()
@_solver_options
@_backend_options
@_holdout_options
@click.option("--similar-k", type=int, default=20, show_default=True, help="Similar movies per movie to score.")
@click.option(
    "--baselines",
    default="",
    callback=lambda _ctx, _param, value: tuple(v.strip() for v in value.split(",") if v.strip()),
    help=f"Score these beside the model on the same split, comma-separated ({', '.join(BASELINES)}).",
)
@_list_options
@json_option
@click.pass_context
def evaluate(ctx: click.Context, train_file: str | None, as_json: bool, **options: Any) -> None:
    """Fit on training ratings, score held-out ones; nothing is written.

    \b
    Example:
        recsql evaluate --train ml-100k/u1.base --test ml-100k/u1.test
        recsql evaluate --folds 5 --solver cg --regularization 10 --json
        recsql evaluate --train ml-100k/u.data --split time --test-fraction 0.2 --baselines popular,ease
        recsql evaluate --train ml-100k/u.data --split leave-last-n --last-n 5
        recsql evaluate --backend spark --train ml-100k/u1.base --test ml-100k/u1.test
    """
    result = recsql.evaluate(_evaluation_engine(ctx, train_file), train_file=train_file, **options)
    rows = [{"fold": str(i + 1), **f.metrics, "fit_seconds": f.fit_seconds} for i, f in enumerate(result.folds)]
    if len(rows) > 1:
        rows.append({"fold": "mean", **result.mean})
    rows += [{"fold": name, **result.baseline_mean(name)} for name in result.baselines]
    document = {
        "solver": result.solver,
        "params": result.params,
        "folds": rows[: len(result.folds)],
        "mean": result.mean,
        "baselines": {
            name: {"folds": [f.metrics for f in folds], "mean": result.baseline_mean(name)}
            for name, folds in result.baselines.items()
        },
    }
    show(rows, [Column("fold", align="<"), *METRIC_COLUMNS], as_json=as_json, document=document)


def _number_list(kind: type) -> Any:
    """A click callback reading a comma-separated list of ``kind``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list[Any]:
        try:
            return [kind(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of numbers, got {value!r}") from None

    return parse


TUNE_COLUMNS = [
    Column("features"),
    Column("regularization", format="g"),
    Column("test_rmse", format=".4f"),
    Column("test_mae", format=".4f"),
    Column("train_rmse", format=".4f"),
    Column("ndcg_at_10", header="ndcg@10", format=".4f"),
    Column("fit_seconds", header="fit_s", format=".2f"),
]


@cli.command()
@click.option(
    "--features",
    default="4,6,10",
    show_default=True,
    callback=_number_list(int),
    help="Comma-separated feature counts.",
)
@click.option(
    "--regularization",
    default="0.03,0.1,0.3",
    show_default=True,
    callback=_number_list(float),
    help="Comma-separated regularization values.",
)
@click.option("--solver", type=click.Choice(sorted(SOLVERS)), default=DEFAULT_SOLVER, show_default=True)
@click.option("--max-iterations", type=int, default=None)
@click.option("--samples", type=int, default=None, help="als: Gibbs samples (0: plain ALS).")
@click.option("--seed", type=int, default=0, show_default=True)
@_holdout_options
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG of test RMSE against regularization (needs recsql[plots]).",
)
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
    quiet = as_json or is_quiet(ctx)
    rows = recsql.tune(
        _evaluation_engine(ctx, train_file),
        train_file=train_file,
        progress=None
        if quiet
        else lambda r: click.echo(
            f"features {r.features:>3}  regularization {r.regularization:<8g} "
            f"test RMSE {r.evaluation.mean['test_rmse']:.4f}"
        ),
        **options,
    )
    records = [{"features": r.features, "regularization": r.regularization, **r.evaluation.mean} for r in rows]
    show(records, TUNE_COLUMNS, as_json=as_json)
    if plot:
        path = recsql.plot_tuning(rows, plot)
        if not quiet:
            click.echo(f"plot written to {path}")

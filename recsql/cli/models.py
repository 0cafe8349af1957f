"""``recsql models``: list the model versions (training runs), show one, activate one
(or roll back), prune old ones' rows, and diff two before activating."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import click

import recsql
import recsql.online
from recsql.cli.app import Group, cli, engine_of, say
from recsql.cli.output import Column, json_option, show, to_json
from recsql.cli.training import ended_split_line

MODEL_COLUMNS = [
    Column("model_id", header="id"),
    Column("status", align="<"),
    Column("algorithm", header="solver", align="<"),
    Column("features", header="k"),
    Column("stored_features", header="stored k"),
    Column("regularization", header="lambda"),
    Column("n_ratings", header="ratings"),
    Column("train_rmse", format=".4f"),
    Column("test_rmse", format=".4f"),
    Column("created_at", header="created", align="<"),
    Column("error", align="<"),
]

_wait_option = click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for another retrain, activation or prune to finish.",
)


@cli.group(cls=Group, invoke_without_command=True)
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
    found = recsql.list_models(engine_of(ctx))
    if not found and not as_json:
        say(ctx, "no training runs yet; run `recsql train`")
        return
    rows = [
        {
            **vars(m),
            **{k: m.params.get(k) for k in ("features", "regularization")},
            "stored_features": m.stored_features,
            **{k: (m.metrics or {}).get(k) for k in ("train_rmse", "test_rmse")},
        }
        for m in found
    ]
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
    engine = engine_of(ctx)
    model = recsql.show_model(engine, model_id)
    counts = recsql.output_counts(engine, model_id)
    if as_json:
        click.echo(to_json({**dataclasses.asdict(model), "rows": counts}))
        return
    show_record(model, {"rows.": counts})
    scored = (model.metrics or {}).get("scored_fit_ratings")
    if (model.metrics or {}).get("refit"):
        say(
            ctx,
            f"the metrics scored a fit on {scored} ratings (the rest held out); the stored model was "
            f"refitted on all {model.n_ratings}",
        )


def show_record(model: recsql.ModelInfo, more: dict[str, dict[str, Any]] | None = None) -> None:
    """A model's record as name/value lines: its fields, then params., metrics. and
    seconds. (per-sweep lists left to --json), then ``more`` sections."""
    fields = {k: v for k, v in dataclasses.asdict(model).items() if k not in ("params", "metrics", "timings")}
    sections = [
        ("", fields),
        ("params.", model.params),
        ("metrics.", model.metrics or {}),
        ("seconds.", model.timings or {}),
        *(more or {}).items(),
    ]
    show(
        [
            {"name": prefix + name, "value": value}
            for prefix, values in sections
            for name, value in values.items()
            if not isinstance(value, list)
        ],
        [Column("name", align="<"), Column("value", align="<")],
        as_json=False,
    )


@models.command("activate")
@click.argument("model_id", type=int)
@_wait_option
@click.pass_context
def models_activate(ctx: click.Context, model_id: int, wait: float) -> None:
    """Make a complete model the active one: a ready one, or a retired one (a rollback).

    \b
    Example:
        recsql models activate 2
    """
    ended = recsql.activate_model(engine_of(ctx), model_id, wait=wait)
    say(ctx, f"model {model_id} is active")
    if ended is not None:
        say(ctx, ended_split_line(ended))


@models.command("prune")
@click.option(
    "--keep",
    type=int,
    default=3,
    show_default=True,
    help="Complete models whose rows are kept, the active one included.",
)
@_wait_option
@click.pass_context
def models_prune(ctx: click.Context, keep: int, wait: float) -> None:
    """Delete the rows of failed models and of all but the KEEP newest complete ones.

    The models' rows stay, marked pruned; the active model is never pruned.

    \b
    Example:
        recsql models prune --keep 2
    """
    pruned = recsql.prune_models(engine_of(ctx), keep=keep, wait=wait)
    say(ctx, f"pruned {len(pruned)} models" + (f": {', '.join(map(str, pruned))}" if pruned else ""))


@models.command("diff")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option(
    "--movies",
    type=int,
    default=10,
    show_default=True,
    help="How many of the movies whose similar movies changed most to list.",
)
@json_option
@click.pass_context
def models_diff(ctx: click.Context, a: int, b: int, movies: int, as_json: bool) -> None:
    """Compare two models: metrics side by side, how users' lists and movies' neighbours changed.

    What to check before `recsql models activate B`.

    \b
    Example:
        recsql models diff 3 4
    """
    diff = recsql.diff_models(engine_of(ctx), a, b, movies=movies)
    if as_json:
        click.echo(to_json(diff))
        return
    verdict = {True: "better", False: "worse", None: ""}
    show(
        [
            {
                "metric": m.name,
                "a": m.a,
                "b": m.b,
                "change": None if m.a is None or m.b is None else m.b - m.a,
                "verdict": verdict[m.better],
            }
            for m in diff.metrics
        ],
        [
            Column("metric", align="<"),
            Column("a", header=f"model {a}", format=".6g"),
            Column("b", header=f"model {b}", format=".6g"),
            Column("change", format="+.4g"),
            Column("verdict", header="B is", align="<"),
        ],
        as_json=False,
    )
    say(ctx)
    say(
        ctx,
        f"recommendations: {diff.users_changed} of {diff.users_compared} users' top {diff.n} changed; "
        f"mean overlap@{diff.n} {diff.mean_overlap:.3f}",
    )
    say(
        ctx,
        f"similar movies: mean overlap {diff.mean_similar_overlap:.3f} over {diff.movies_compared} movies; "
        "changed most:",
    )
    show(
        diff.most_changed,
        [
            Column("movie_id", header="movie"),
            Column("title", align="<"),
            Column("overlap", format=".2f"),
            Column("n_ratings", header="ratings"),
        ],
        as_json=False,
    )


SPLIT_COLUMNS = [
    Column("split_id", header="split"),
    Column("model_a", header="A"),
    Column("model_b", header="B"),
    Column("share", header="B's share", format=".2%"),
    Column("started_at", header="started", align="<"),
    Column("ended_at", header="ended", align="<"),
    Column("ended_by", header="why", align="<"),
]


@models.command("split")
@click.argument("a", type=int, required=False)
@click.argument("b", type=int, required=False)
@click.option("--share", type=float, default=None, help="The part of the users model B serves, e.g. 0.2.")
@click.option("--off", is_flag=True, help="End the running split: every user gets the active model again.")
@_wait_option
@json_option
@click.pass_context
def models_split(
    ctx: click.Context, a: int | None, b: int | None, share: float | None, off: bool, wait: float, as_json: bool
) -> None:
    """Split traffic: serve SHARE of the users from model B, the rest from the active model A.

    Users are assigned by a stable hash of their id; recommended_movies serves each from
    their model and names it in model_id, so the application's SQL does not change.
    Activating any model ends the split.  With no arguments, lists the splits.

    \b
    Example:
        recsql models split 8 9 --share 0.2
        recsql models split --off
        recsql models split
    """
    engine = engine_of(ctx)
    if off:
        if a is not None or share is not None:
            raise click.UsageError("--off takes no models and no --share")
        ended = recsql.end_split(engine, wait=wait)
        say(
            ctx,
            "no split was running"
            if ended is None
            else f"ended split {ended.split_id}: every user gets model {ended.model_a}",
        )
        return
    if a is None:
        found = recsql.list_splits(engine)
        if not found and not as_json:
            say(ctx, "no traffic splits yet; start one with `recsql models split A B --share 0.2`")
            return
        show([vars(s) for s in found], SPLIT_COLUMNS, as_json=as_json, document=found)
        return
    if b is None or share is None:
        raise click.UsageError("name both models, A (the active one) and B, and --share")
    split = recsql.split_traffic(engine, a, b, share, wait=wait)
    say(ctx, f"split {split.split_id}: model {b} serves {split.share:.2%} of the users, model {a} the rest")


@models.command("online")
@click.argument("a", type=int, required=False)
@click.argument("b", type=int, required=False)
@click.option("--since", default=None, help="From this time: ISO date or time (UTC), or Unix seconds [all].")
@click.option("--until", default=None, help="Until this time, as --since [now].")
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=recsql.online.DEFAULT_WINDOW,
    show_default=True,
    help="Seconds after a showing in which a click or conversion counts for it.",
)
@json_option
@click.pass_context
def models_online(
    ctx: click.Context, a: int | None, b: int | None, since: str | None, until: str | None, window: int, as_json: bool
) -> None:
    """Compare two models on what users did: click-through, conversion, click coverage.

    Without A and B, the latest traffic split over the time it ran.  Each rate has its
    95 % interval; B against A is a two-proportion test, with a plain verdict.

    \b
    Example:
        recsql models online
        recsql models online 8 9 --since 2026-12-01
    """
    found = recsql.online_metrics(engine_of(ctx), a, b, since=_moment(since), until=_moment(until), window=window)
    if as_json:
        click.echo(to_json(found))
        return
    rows = [
        {
            "variant": name,
            "model_id": v.model_id,
            "impressions": v.impressions,
            "users": v.users,
            "ctr": v.click_through.rate,
            "ctr_interval": f"{v.click_through.low:.2%} .. {v.click_through.high:.2%}",
            "conversion": v.conversion.rate,
            "conversion_interval": f"{v.conversion.low:.2%} .. {v.conversion.high:.2%}",
            "clicked_movies": v.clicked_movies,
            "click_coverage": v.click_coverage,
        }
        for name, v in (("A", found.a), ("B", found.b))
    ]
    show(
        rows,
        [
            Column("variant", align="<"),
            Column("model_id", header="model"),
            Column("impressions"),
            Column("users"),
            Column("ctr", header="click-through", format=".2%"),
            Column("ctr_interval", header="95 % interval"),
            Column("conversion", format=".2%"),
            Column("conversion_interval", header="95 % interval"),
            Column("clicked_movies", header="clicked movies"),
            Column("click_coverage", header="click coverage", format=".2%"),
        ],
        as_json=False,
    )
    diff = found.click_through
    click.echo(
        f"B - A click-through {diff.difference:+.2%} ({diff.low:+.2%} .. {diff.high:+.2%}), p = {diff.p_value:.2g}; "
        f"conversion {found.conversion.difference:+.2%}, p = {found.conversion.p_value:.2g}"
    )
    click.echo(found.verdict)


def _moment(value: str | None) -> float | datetime | None:
    """--since/--until: Unix seconds, or an ISO date or time (UTC unless it says)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither Unix seconds nor an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

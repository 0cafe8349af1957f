"""Which of two models does better for its users: online metrics from ``events``.

The unit is an impression: a movie a model showed a user in the period, counted once
per (model, user, movie) at its first showing, however often it was shown again.  An
impression is

- *clicked* when the same user ``clicked`` the same movie within ``window`` seconds
  after that first showing, and before the period's end (click-through = clicked
  impressions / impressions);
- *converted* when the user ``rated`` or ``bought`` it within the window (conversion);

and a model's *click coverage* is the share of the movies it knows (``models.n_movies``)
among those clicked from its impressions.  One SQL statement counts them per model
(:func:`recsql.db.events.impression_counts`); the intervals, the
test of B against A and the verdict are :mod:`recsql.evaluation.significance`'s.
Without model ids, the latest traffic split is compared over the time it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from recsql import store
from recsql.db.events import impression_counts
from recsql.errors import InvalidParameter
from recsql.evaluation.significance import Difference, Proportion, trials_needed, two_proportions, wilson

DEFAULT_WINDOW = 86_400
"""Seconds after a showing in which a click or a conversion counts for it: one day."""
LEVEL = 0.05  # a difference is called when its p-value is below this
NO_END = 2**62  # "until" when none is given


@dataclass(frozen=True)
class VariantMetrics:
    """One model's online figures over the period."""

    model_id: int
    impressions: int
    users: int
    click_through: Proportion
    conversion: Proportion
    clicked_movies: int
    click_coverage: float  # clicked movies / the movies the model knows


@dataclass(frozen=True)
class OnlineMetrics:
    """Model B against model A from ``since`` until ``until`` (Unix seconds; None: no end)."""

    a: VariantMetrics
    b: VariantMetrics
    since: int
    until: int | None
    window: int
    split_id: int | None  # the split compared, when the models were not named
    click_through: Difference  # B - A
    conversion: Difference  # B - A
    more_impressions: int | None  # to tell the observed click-through difference apart; None: told, or none seen
    verdict: str


def online_metrics(
    engine: Engine,
    a: int | None = None,
    b: int | None = None,
    *,
    since: int | float | datetime | None = None,
    until: int | float | datetime | None = None,
    window: int = DEFAULT_WINDOW,
) -> OnlineMetrics:
    """Compare model ``b`` with model ``a`` on what users did with the movies each showed
    them (``events``), from ``since`` (Unix seconds or a datetime; default: all) to
    ``until`` (default: no end).  Without ``a`` and ``b``, the latest traffic split's models
    over the time it ran (``since``/``until`` narrow it)."""
    if (a is None) != (b is None):
        raise InvalidParameter("name both models (A and B), or neither for the latest split")
    if window <= 0:
        raise InvalidParameter(f"window is seconds after a showing, more than 0; not {window}")
    split_id = None
    lower, upper = _seconds(since), _seconds(until)
    if a is None or b is None:
        splits = store.list_splits(engine)
        if not splits:
            raise InvalidParameter("no traffic split yet: name two models, or start one with `recsql models split A B`")
        split = splits[0]
        a, b, split_id = split.model_a, split.model_b, split.split_id
        start, end = split_bounds(split)
        lower = start if lower is None else max(lower, start)
        if end is not None:
            upper = end if upper is None else min(upper, end)
    lower = 0 if lower is None else lower
    bounds = {"since": lower, "until": NO_END if upper is None else upper}
    with engine.connect() as conn:
        models = [store.get_model(conn, model_id) for model_id in (a, b)]  # UnknownModel for either
        rows = {r.model_id: r for r in impression_counts(conn, a, b, window=int(window), **bounds)}
    variants = [_variant(m.model_id, rows.get(m.model_id), m.n_movies) for m in models]
    click_through = two_proportions(variants[0].click_through, variants[1].click_through)
    conversion = two_proportions(variants[0].conversion, variants[1].conversion)
    more, verdict = _verdict(variants[0], variants[1], click_through)
    return OnlineMetrics(
        variants[0], variants[1], lower, upper, int(window), split_id, click_through, conversion, more, verdict
    )


def split_bounds(split: store.Split) -> tuple[int, int | None]:
    """The Unix seconds a split ran: from its start until just after its end (None: it runs)."""
    end = _seconds(split.ended_at)
    return _seconds(split.started_at) or 0, None if end is None else end + 1


def _variant(model_id: int, row: Any, n_movies: int | None) -> VariantMetrics:
    impressions = int(row.impressions) if row else 0
    clicks, conversions = (int(row.clicks or 0), int(row.conversions or 0)) if row else (0, 0)
    clicked_movies = int(row.clicked_movies) if row else 0
    return VariantMetrics(
        model_id,
        impressions,
        int(row.users) if row else 0,
        wilson(clicks, impressions),
        wilson(conversions, impressions),
        clicked_movies,
        clicked_movies / n_movies if n_movies else 0.0,
    )


def _verdict(a: VariantMetrics, b: VariantMetrics, test: Difference) -> tuple[int | None, str]:
    """A plain sentence on click-through, and the impressions still needed when it cannot
    tell yet (at the arms' current ratio, to find the observed difference at 80 % power)."""
    if a.impressions == 0 or b.impressions == 0:
        missing = " and ".join(f"model {v.model_id}" for v in (a, b) if v.impressions == 0)
        return None, f"no impressions of {missing} yet: log the shown events (see docs/howto/experiments.md)"
    rates = f"click-through {b.click_through.rate:.2%} (B) vs {a.click_through.rate:.2%} (A)"
    if test.p_value < LEVEL:
        better, worse = (b, a) if test.difference > 0 else (a, b)
        return None, (
            f"model {better.model_id} ({'B' if better is b else 'A'}) better: click-through "
            f"{better.click_through.rate:.2%} vs {worse.click_through.rate:.2%}, p = {test.p_value:.2g}"
        )
    needed = trials_needed(a.click_through.rate, b.click_through.rate, b.impressions / a.impressions)
    if needed is None:
        return None, f"no difference yet ({rates}, p = {test.p_value:.2g})"
    more = max(0, needed[0] - a.impressions) + max(0, needed[1] - b.impressions)
    return more, f"no difference yet ({rates}, p = {test.p_value:.2g}); about {more:,} more impressions needed"


def _seconds(moment: int | float | datetime | None) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):  # naive ones are UTC, as recsql stores them (SQLite drops the zone)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return int(moment)

"""Online metrics: the counts equal a plain pandas recomputation from the raw events on
both databases, the statistics equal scipy's, and the verdict says what they mean."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, chi2_contingency
from sqlalchemy import insert

import recsql
from recsql.db.tables import Model
from recsql.evaluation.significance import trials_needed, two_proportions, wilson
from recsql.store.write import now

WINDOW = 3_600
T0 = 1_700_000_000


def _models(engine, n_movies=(50, 40), statuses=("active", "retired")) -> tuple[int, int]:
    with engine.begin() as conn:
        return tuple(
            conn.execute(
                insert(Model)
                .values(created_at=now(), status=status, algorithm="als", params={}, n_movies=n)
                .returning(Model.id)
            ).scalar_one()
            for status, n in zip(statuses, n_movies)
        )


def _random_events(a: int, b: int, seed: int = 3) -> pd.DataFrame:
    """Shows by A, B and a third model, re-shows, clicks inside and outside the window,
    before the shows, conversions, and clicks nobody was shown."""
    rng = np.random.default_rng(seed)
    n = 3_000
    shown = pd.DataFrame(
        {
            "kind": "shown",
            "user_id": rng.integers(1, 300, n),
            "movie_id": rng.integers(1, 60, n),
            "model_id": rng.choice([a, b, 999], n, p=[0.5, 0.4, 0.1]),
            "at": T0 + rng.integers(0, 20 * WINDOW, n),
            "rank": rng.integers(1, 11, n),
        }
    )
    acted = shown.sample(frac=0.3, random_state=seed).copy()
    acted["kind"] = rng.choice(["clicked", "rated", "bought", "watched"], len(acted))
    acted["at"] = acted["at"] + rng.integers(-WINDOW // 2, 2 * WINDOW, len(acted))  # some before, some too late
    acted[["model_id", "rank"]] = None
    stray = pd.DataFrame(
        {"kind": "clicked", "user_id": rng.integers(1, 300, 200), "movie_id": rng.integers(1, 60, 200), "at": T0}
    )
    return pd.concat([shown, acted, stray], ignore_index=True)


def _recomputed(events: pd.DataFrame, model: int, since: int, until: int, n_movies: int) -> dict:
    """The definitions, from scratch: first showing per (model, user, movie) in the period;
    clicked / converted if such an event for the pair falls in [shown, shown + window] and
    before the period's end."""
    shows = events[
        (events.kind == "shown") & (events.model_id == model) & (events["at"] >= since) & (events["at"] < until)
    ]
    first = shows.groupby(["user_id", "movie_id"], as_index=False)["at"].min()

    def followed(kinds):
        acts = events[events.kind.isin(kinds)][["user_id", "movie_id", "at"]]
        pairs = first.merge(acts, on=["user_id", "movie_id"], suffixes=("", "_act"))
        hit = pairs[(pairs.at_act >= pairs["at"]) & (pairs.at_act <= pairs["at"] + WINDOW) & (pairs.at_act < until)]
        return set(zip(hit.user_id, hit.movie_id))

    clicked, converted = followed(["clicked"]), followed(["rated", "bought"])
    return {
        "impressions": len(first),
        "users": first.user_id.nunique(),
        "clicks": len(clicked),
        "conversions": len(converted),
        "clicked_movies": len({m for _, m in clicked}),
        "click_coverage": len({m for _, m in clicked}) / n_movies,
    }


def _figures(v) -> dict:
    return {
        "impressions": v.impressions,
        "users": v.users,
        "clicks": v.click_through.successes,
        "conversions": v.conversion.successes,
        "clicked_movies": v.clicked_movies,
        "click_coverage": v.click_coverage,
    }


def test_online_metrics_equal_a_recomputation_from_the_raw_events(engine):
    a, b = _models(engine)
    events = _random_events(a, b)
    recsql.log_events(engine, events)
    since, until = T0 + 2 * WINDOW, T0 + 15 * WINDOW
    found = recsql.online_metrics(engine, a, b, since=since, until=until, window=WINDOW)
    assert _figures(found.a) == _recomputed(events, a, since, until, 50)
    assert _figures(found.b) == _recomputed(events, b, since, until, 40)
    assert found.a.impressions > 500 and found.a.click_through.successes > 20 and found.b.conversion.successes > 10
    everything = recsql.online_metrics(engine, a, b, window=WINDOW)
    assert _figures(everything.a) == _recomputed(events, a, 0, 2**62, 50)
    expected = two_proportions(found.a.click_through, found.b.click_through)
    assert found.click_through == expected


def test_the_latest_split_is_compared_over_the_time_it_ran(engine, run):
    a, b = _models(engine)
    split = recsql.split_traffic(engine, a, b, share=0.5)
    started = int(split.started_at.timestamp())
    recsql.log_events(
        engine,
        {
            "kind": ["shown", "shown", "shown", "clicked"],
            "user_id": [1, 2, 3, 2],
            "movie_id": [5, 5, 5, 5],
            "model_id": [a, b, b, None],
            "at": [started - 100, started + 1, started + 2, started + 3],  # A's showing predates the split
        },
    )
    found = recsql.online_metrics(engine)
    assert found.split_id == split.split_id and found.since == started and found.until is None
    assert (found.a.impressions, found.b.impressions, found.b.click_through.successes) == (0, 2, 1)
    assert found.verdict.startswith(f"no impressions of model {a} yet")
    out = json.loads(run("models", "online", "--json").output)
    assert out["b"]["click_through"]["successes"] == 1 and out["split_id"] == split.split_id
    assert run("models", "online", a, ok=False).exit_code == 1
    assert run("models", "online", a, 777, ok=False).exit_code == 1
    assert run("models", "online", "--since", "yesterday", ok=False).exit_code == 2


def test_verdicts_say_which_model_wins_or_how_many_impressions_are_missing(engine, run):
    a, b = _models(engine)
    shows, clicks = [], []
    for model, users, clicked in ((a, range(0, 2000), 100), (b, range(2000, 4000), 160)):
        for i, user in enumerate(users):
            shows.append(("shown", user, 1, model, T0))
            if i < clicked:
                clicks.append(("clicked", user, 1, None, T0 + 10))
    frame = pd.DataFrame(shows + clicks, columns=["kind", "user_id", "movie_id", "model_id", "at"])
    recsql.log_events(engine, frame)
    found = recsql.online_metrics(engine, a, b)
    assert found.click_through.p_value < 0.01
    assert found.verdict.startswith(f"model {b} (B) better: click-through 8.00% vs 5.00%, p = ")
    out = run("models", "online", a, b, "--since", "2023-11-14").output
    assert "8.00%" in out and f"model {b} (B) better" in out
    assert recsql.online_metrics(engine, a, b, since=T0 + 1).verdict.startswith("no impressions")
    # Few impressions, close rates: not told apart yet, and the shortfall is estimated.
    c, d = _models(engine, statuses=("retired", "retired"))
    few = [("shown", u, 2, c if u < 100 else d, T0) for u in range(200)]
    few += [("clicked", u, 2, None, T0 + 5) for u in (*range(5), *range(100, 108))]
    recsql.log_events(engine, pd.DataFrame(few, columns=["kind", "user_id", "movie_id", "model_id", "at"]))
    close = recsql.online_metrics(engine, c, d)
    needed = trials_needed(0.05, 0.08, 1.0)
    assert close.click_through.p_value > 0.05 and close.more_impressions == sum(needed) - 200
    assert close.verdict.endswith(f"about {close.more_impressions:,} more impressions needed")
    flipped = recsql.online_metrics(engine, b, a)
    assert flipped.verdict.startswith(f"model {b} (A) better")


def test_the_shortfall_is_what_the_power_formula_asks_for():
    a, b = wilson(50, 1000), wilson(60, 1000)
    needed = trials_needed(a.rate, b.rate)
    assert needed is not None and 7_500 < needed[0] < 8_500  # the textbook 5 % vs 6 % figure, about 8,150 per arm
    # Simulated: at that size a test at 0.05 finds the difference about 80 % of the time.
    rng = np.random.default_rng(0)
    n = needed[0]
    found = [
        two_proportions(wilson(int(x), n), wilson(int(y), n)).p_value < 0.05
        for x, y in zip(rng.binomial(n, 0.05, 2000), rng.binomial(n, 0.06, 2000))
    ]
    assert abs(np.mean(found) - 0.8) < 0.03
    assert trials_needed(0.05, 0.05) is None


@pytest.mark.parametrize("successes, trials", [(0, 50), (3, 120), (40, 200), (199, 200)])
def test_intervals_and_tests_equal_scipys(successes, trials):
    mine = wilson(successes, trials)
    theirs = binomtest(successes, trials).proportion_ci(method="wilson")
    assert (mine.low, mine.high) == pytest.approx((theirs.low, theirs.high), abs=1e-9)
    other = wilson(successes // 2 + 1, trials)
    diff = two_proportions(mine, other)
    table = [[successes, trials - successes], [other.successes, trials - other.successes]]
    chi2, p, *_ = chi2_contingency(table, correction=False)
    assert diff.p_value == pytest.approx(p, rel=1e-6) and diff.z**2 == pytest.approx(chi2, rel=1e-6)

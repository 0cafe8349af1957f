#!/usr/bin/env python3
"""Benchmark: serving latency of the Python API against a trained database.

    python scripts/bench_serving.py --database-url postgresql://postgres@127.0.0.1/big [--calls 1000]

Against the active model: `Recommender.similar` and `Recommender.recommend` for random
known movies and users (one indexed query each), and `recommend_for_ratings` with 10
random ratings (fold-in plus scoring every movie), after the one-off load of the movie
factors, which is timed apart.  Prints median and 95th percentile in milliseconds.
Seeded, so the same ids are asked each run.  ``--own-engine`` serves through
``Recommender.from_url`` instead of ``Recommender(engine)``.

``--split SHARE`` also times the split views, in the same run: a user's list
(``recommend(user, 10)``, and the application's own ``SELECT`` on ``recommended_movies``)
without a split, then with the newest model that is not active serving SHARE of the users
(``recsql models split``; it needs one, e.g. from ``recsql train --no-activate``), then
without again; each phase ``--rounds`` times, alternating, and the split ended at the end.
It prints the medians and their ratio (with / without).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sqlalchemy import text

import recsql


def timed(call, arguments) -> list[float]:
    times = []
    for args in arguments:
        started = time.perf_counter()
        call(*args)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--own-engine",
        action="store_true",
        help="Recommender.from_url (its own pool, timeouts set once per connection) instead of "
        "Recommender(engine) (timeouts set by each call on the lent engine's connection)",
    )
    parser.add_argument("--split", type=float, default=None, help="also time the split views at this share")
    parser.add_argument("--rounds", type=int, default=3, help="with --split: rounds of each phase")
    args = parser.parse_args()
    engine = recsql.connect(args.database_url)
    rec = recsql.Recommender.from_url(args.database_url) if args.own_engine else recsql.Recommender(engine)
    with engine.connect() as conn:
        model = conn.execute(text("SELECT model_id, n_users, n_movies FROM active_model")).one()
        movies = np.array(
            conn.execute(text(f"SELECT movie_id FROM movie_biases WHERE model_id = {model.model_id}")).scalars().all()
        )
        users = np.array(
            conn.execute(text(f"SELECT user_id FROM user_biases WHERE model_id = {model.model_id}")).scalars().all()
        )
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    rec.load()
    load = time.perf_counter() - started
    results = {
        "similar(movie, 10)": timed(rec.similar, [(int(m), 10) for m in rng.choice(movies, args.calls)]),
        "recommend(user, 10)": timed(rec.recommend, [(int(u), 10) for u in rng.choice(users, args.calls)]),
        "recommend_for_ratings(10 ratings)": timed(
            rec.recommend_for_ratings,
            [
                ({int(m): float(r) for m, r in zip(rng.choice(movies, 10, replace=False), rng.integers(1, 6, 10))}, 10)
                for _ in range(max(1, args.calls // 5))
            ],
        ),
    }
    print(
        f"{engine.dialect.name}, active model {model.model_id}: {model.n_users:,} users, {model.n_movies:,} movies; "
        f"movie factors loaded once in {load:.2f} s"
    )
    print()
    print("| call | calls | median ms | p95 ms |")
    print("|---|---|---|---|")
    for name, times in results.items():
        p95 = float(np.percentile(times, 95))
        print(f"| {name} | {len(times)} | {statistics.median(times):.2f} | {p95:.2f} |")
    if args.split is not None:
        split_views(engine, rec, model.model_id, users, args, rng)


def split_views(engine, rec, active: int, users: np.ndarray, args: argparse.Namespace, rng) -> None:
    """The user's list without and with a split, alternating rounds; medians and ratio."""
    candidates = [m for m in recsql.list_models(engine) if m.status == "retired"]
    if not candidates:
        raise SystemExit("--split needs a complete model that is not active: run `recsql train --no-activate`")
    model_b = candidates[0].model_id
    asked = [int(u) for u in rng.choice(users, args.calls)]
    query = text("SELECT movie_id, rank, model_id FROM recommended_movies WHERE user_id = :u ORDER BY rank LIMIT 10")

    def sql(user: int) -> None:
        with engine.connect() as conn:
            conn.execute(query, {"u": user}).all()

    times: dict[tuple[str, bool], list[float]] = {}
    try:
        for _ in range(args.rounds):
            for split in (False, True):
                if split:
                    recsql.split_traffic(engine, active, model_b, args.split)
                else:
                    recsql.end_split(engine)
                for name, call in (("recommend(user, 10)", lambda u: rec.recommend(u, 10)), ("SQL on the view", sql)):
                    times.setdefault((name, split), []).extend(timed(call, [(u,) for u in asked]))
    finally:
        recsql.end_split(engine)
    print()
    print(
        f"split views: model {model_b} serves {args.split:.0%} of the users beside model {active}; "
        f"{args.rounds} rounds of {args.calls} calls each way"
    )
    print()
    print("| call | median ms, no split | median ms, split | ratio |")
    print("|---|---|---|---|")
    for name in ("recommend(user, 10)", "SQL on the view"):
        plain, split = statistics.median(times[(name, False)]), statistics.median(times[(name, True)])
        print(f"| {name} | {plain:.3f} | {split:.3f} | {split / plain:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: serving latency of the Python API against a trained database.

    python scripts/bench_serving.py --database-url postgresql://postgres@127.0.0.1/big [--calls 1000]

Against the active model: `Recommender.similar` and `Recommender.recommend` for random
known movies and users (one indexed query each), and `recommend_for_ratings` with 10
random ratings (fold-in plus scoring every movie), after the one-off load of the movie
factors, which is timed apart.  Prints median and 95th percentile in milliseconds.
Seeded, so the same ids are asked each run.  ``--own-engine`` serves through
``Recommender.from_url`` instead of ``Recommender(engine)``.
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


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: logging events in bulk, and the online metrics over many of them.

    python scripts/bench_online.py --database-url URL [--impressions 1000000] [--users 100000]

Two model rows (A active, B kept aside) and ``--impressions`` shown events over
``--users`` users and 20,000 movies (a tenth shown again), 5 % of them clicked and 1 %
bought within the hour, plus as many unrelated clicks: appended with
``recsql.log_events`` in batches of 100,000 (events per second), then
``recsql.online_metrics`` timed three times (median; on PostgreSQL after the ``VACUUM
ANALYZE`` autovacuum would run after such a load).  Seeded.  The database must be
empty of events (a scratch one).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sqlalchemy import insert, text

import recsql
from recsql.db.tables import Model
from recsql.store.write import now

BATCH = 100_000
T0 = 1_700_000_000


def events(impressions: int, users: int, a: int, b: int, rng: np.random.Generator) -> pd.DataFrame:
    user = rng.integers(1, users + 1, impressions)
    shown = pd.DataFrame(
        {
            "kind": "shown",
            "user_id": user,
            "movie_id": rng.integers(1, 20_001, impressions),
            "model_id": np.where(user % 5 == 0, b, a),
            "rank": rng.integers(1, 11, impressions),
            "at": T0 + rng.integers(0, 30 * 86_400, impressions),
        }
    )
    again = shown.sample(frac=0.1, random_state=1).assign(at=lambda f: f["at"] + 600)
    clicked = shown.sample(frac=0.05, random_state=2).assign(kind="clicked", at=lambda f: f["at"] + 60)
    bought = shown.sample(frac=0.01, random_state=3).assign(kind="bought", at=lambda f: f["at"] + 900)
    stray = shown.sample(frac=0.05, random_state=4).assign(kind="clicked", movie_id=lambda f: f["movie_id"] + 20_000)
    acts = pd.concat([clicked, bought, stray])[["kind", "user_id", "movie_id", "at"]]
    return pd.concat([shown, again, acts], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    engine = recsql.connect(args.database_url)
    with engine.begin() as conn:
        a, b = (
            conn.execute(
                insert(Model)
                .values(created_at=now(), status=status, algorithm="als", params={}, n_movies=20_000)
                .returning(Model.id)
            ).scalar_one()
            for status in ("active", "retired")
        )
    frame = events(args.impressions, args.users, a, b, np.random.default_rng(0))
    started = time.perf_counter()
    for first in range(0, len(frame), BATCH):
        recsql.log_events(engine, frame.iloc[first : first + BATCH])
    logged = time.perf_counter() - started
    if engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load: statistics, visibility map
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        found = recsql.online_metrics(engine, a, b, window=3_600)
        times.append(time.perf_counter() - started)
    print(
        f"{engine.dialect.name}: {len(frame):,} events logged in {logged:.1f} s ({len(frame) / logged:,.0f} a second); "
        f"online metrics over {found.a.impressions + found.b.impressions:,} impressions: median "
        f"{statistics.median(times):.2f} s of {', '.join(f'{t:.2f}' for t in times)}"
    )
    print(found.verdict)


if __name__ == "__main__":
    main()

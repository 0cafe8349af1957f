#!/usr/bin/env python3
"""Benchmark: how big the database grows over repeated retrains with the default --keep.

    python scripts/bench_growth.py --database-url sqlite:///growth.db [--retrains 10]
    python scripts/bench_growth.py --database-url postgresql://postgres@127.0.0.1/growth

Imports MovieLens 100K (``../shared/data/ml-100k`` or ``$RECSQL_SHARED_DATA``) into an
empty database, then retrains ``--retrains`` times with recsql's defaults (``--keep 3``)
and prints, after each, the output rows stored and the database's size: the SQLite file
(with its WAL checkpointed) or ``pg_database_size``.  Pruned rows free space that the
next retrains reuse, so the size levels off after ``keep`` retrains instead of growing.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sqlalchemy import Engine, text

import recsql
from recsql.store import OUTPUT_TABLES


def size_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(str(engine.url.database)).stat().st_size


def output_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in OUTPUT_TABLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="an empty database")
    parser.add_argument("--retrains", type=int, default=10)
    parser.add_argument("--samples", type=int, default=None, help="passed to train (default: recsql's)")
    args = parser.parse_args()
    data = Path(os.environ.get("RECSQL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    engine = recsql.connect(args.database_url)
    recsql.import_ratings(engine, data / "ml-100k" / "u.data")
    recsql.import_movies(engine, data / "ml-100k" / "u.item")
    print(f"{engine.dialect.name}: MovieLens 100K imported, {size_bytes(engine) / 1e6:.1f} MB")
    print("| retrain | seconds | output rows | database MB |")
    print("|---|---|---|---|")
    for i in range(1, args.retrains + 1):
        started = time.perf_counter()
        recsql.train(engine, samples=args.samples)
        seconds = time.perf_counter() - started
        print(f"| {i} | {seconds:.1f} | {output_rows(engine):,} | {size_bytes(engine) / 1e6:.1f} |", flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()

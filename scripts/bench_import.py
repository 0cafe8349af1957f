#!/usr/bin/env python3
"""Benchmark: import MovieLens 100K ``u.data`` (100,000 ratings) into a fresh database.

    python scripts/bench_import.py [--repeat 5] [--postgres postgresql://postgres@127.0.0.1/test]

Each repetition creates a fresh database (SQLite file in a temporary folder; a new
PostgreSQL database when --postgres is given), sets up the schema, then times
``recsql.import_ratings`` alone: parse, validate, one bulk transaction.  Prints each
run and the median, per database.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _scratch import scratch_postgres

import recsql

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"


def time_import(url: str, path: Path) -> float:
    engine = recsql.connect(url)
    try:
        started = time.perf_counter()
        result = recsql.import_ratings(engine, path)
        elapsed = time.perf_counter() - started
        assert result.rows == 100_000, result
        return elapsed
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure")
    args = parser.parse_args()

    results: dict[str, list[float]] = {"sqlite": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            results["sqlite"].append(time_import(f"sqlite:///{folder}/bench.db", args.data))
    if args.postgres:
        results["postgresql"] = []
        for _ in range(args.repeat):
            with scratch_postgres(args.postgres) as url:
                results["postgresql"].append(time_import(url, args.data))
    print(f"import of {args.data} (100,000 ratings), seconds")
    for name, times in results.items():
        runs = " ".join(f"{t:.3f}" for t in times)
        print(f"{name:<11} median {statistics.median(times):.3f}   runs: {runs}")


if __name__ == "__main__":
    main()

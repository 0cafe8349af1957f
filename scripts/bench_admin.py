#!/usr/bin/env python3
"""Benchmark: the admin's commands on a large database.

    python scripts/bench_admin.py --ratings 5000000 --databases sqlite,postgresql

Generates a synthetic catalogue (seed 0, MovieLens 25M's proportions) into a fresh
database of each kind, trains two models (`--test-fraction 0.1`, the default and
`--samples 0`), then times `recsql inspect movie|user|model`, `recsql models diff` and
`recsql report` as a user runs them (each its own process, so Python's start is
included), median of --repeats runs, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch_postgres

import recsql

COMMANDS = ("inspect movie 1", "inspect user 1", "inspect model", "models diff 1 2", "report --out {folder}/r.html")


def timed(url: str, command: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "recsql", "--quiet", "--database-url", url, *command.split()],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=5_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    users = max(10, round(args.ratings * 162541 / 25_000_095))
    movies = max(10, round(args.ratings * 59047 / 25_000_095))
    rows = []
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        for database in args.databases.split(","):
            url = (
                f"sqlite:///{folder}/admin.db"
                if database == "sqlite"
                else stack.enter_context(scratch_postgres(args.postgres))
            )
            engine = recsql.connect(url)
            recsql.generate(engine, ratings=args.ratings, users=users, movies=movies, seed=0)
            recsql.train(engine, test_fraction=0.1)
            recsql.train(engine, test_fraction=0.1, samples=0)
            engine.dispose()
            seconds = {
                c: statistics.median(timed(url, c.format(folder=folder)) for _ in range(args.repeats)) for c in COMMANDS
            }
            rows.append((database, seconds))
            print(database, {c.split(" --")[0]: round(s, 2) for c, s in seconds.items()}, flush=True)
    print()
    print(
        f"{args.ratings:,} ratings, {users:,} users, {movies:,} movies; seconds per command "
        f"(median of {args.repeats}, a process each)"
    )
    print("| database | " + " | ".join(f"`{c.split(' --')[0]}`" for c in COMMANDS) + " |")
    print("|---|" + "---|" * len(COMMANDS))
    for database, seconds in rows:
        print(f"| {database} | " + " | ".join(f"{seconds[c]:.2f}" for c in COMMANDS) + " |")


if __name__ == "__main__":
    main()

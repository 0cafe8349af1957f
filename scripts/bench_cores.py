#!/usr/bin/env python3
"""Benchmark: the same retrain pinned to more and more cores.

    python scripts/bench_cores.py --ratings 25000000 --cores 2,16

Generates one synthetic catalogue (seed 0, MovieLens 25M's proportions) into a temporary
SQLite file, then runs `recsql train` (--train-args) once per core count, each pinned
with `taskset` to cores 0..N-1 (recsql's thread count follows the affinity; so does the
BLAS), and prints every phase's seconds, the wall time and the ratio to the first count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import PHASES, run_train

import recsql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--cores", default="2," + str(len(os.sched_getaffinity(0))))
    parser.add_argument("--train-args", default="", help="flags for `recsql train` (default: none, its one default)")
    args = parser.parse_args()
    users = max(10, round(args.ratings * 162541 / 25_000_095))
    movies = max(10, round(args.ratings * 59047 / 25_000_095))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/cores.db"
        engine = recsql.connect(url)
        started = time.perf_counter()
        recsql.generate(engine, ratings=args.ratings, users=users, movies=movies, seed=0)
        engine.dispose()
        print(f"generated {args.ratings:,} ratings in {time.perf_counter() - started:.1f} s", flush=True)
        rows = []
        for cores in (int(c) for c in args.cores.split(",")):
            result = run_train(url, args.train_args, ("taskset", "-c", f"0-{cores - 1}"))
            rows.append((cores, result))
            print(f"{cores} cores: {result['wall_seconds']:.1f} s, phases {result['phases']}", flush=True)
    first = rows[0][1]["wall_seconds"]
    print()
    print(f"`recsql train {args.train_args}` on {args.ratings:,} ratings (SQLite), pinned with taskset")
    print()
    print("| cores | " + " | ".join(PHASES) + " | wall s | vs first |")
    print("|" + "---|" * (len(PHASES) + 3))
    for cores, r in rows:
        phases = " | ".join(f"{r['phases'].get(p, 0):.1f}" for p in PHASES)
        print(f"| {cores} | {phases} | {r['wall_seconds']:.1f} | {r['wall_seconds'] / first:.2f}x |")


if __name__ == "__main__":
    main()

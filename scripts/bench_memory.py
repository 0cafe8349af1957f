#!/usr/bin/env python3
"""Benchmark: the in-memory model (``recsql.fit``) on MovieLens 100K's u1.base.

    python scripts/bench_memory.py [--data ../shared/data/ml-100k] [--pairs 100000] [--repeat 7]

Prints the fit's seconds and the median of ``--repeat`` calls predicting ``--pairs``
random (user, movie) pairs (seed 0; ids drawn over the catalogue, so some are unknown
and take the fallback) in one vectorised ``Model.predict``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import recsql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ml-100k")
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ratings = pd.read_csv(args.data / "u1.base", sep="\t", names=["user_id", "movie_id", "rating", "timestamp"])
    started = time.perf_counter()
    model = recsql.fit(ratings)
    print(f"fit on {len(ratings):,} ratings: {time.perf_counter() - started:.2f} s")
    rng = np.random.default_rng(0)
    users = rng.integers(1, ratings.user_id.max() + 1, args.pairs)
    movies = rng.integers(1, ratings.movie_id.max() + 1, args.pairs)
    seconds = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        model.predict(users, movies)
        seconds.append(time.perf_counter() - started)
    print(f"predict {args.pairs:,} pairs: median {statistics.median(seconds) * 1000:.1f} ms of {args.repeat} calls")


if __name__ == "__main__":
    main()

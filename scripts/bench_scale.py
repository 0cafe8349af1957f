#!/usr/bin/env python3
"""Benchmark: end-to-end retrain at scale, through the database and back.

    python scripts/bench_scale.py --ratings 25000000 --users 162541 --movies 59047
    python scripts/bench_scale.py --sizes 1000000,5000000,25000000 --databases sqlite,postgresql
    python scripts/bench_scale.py --sizes 5000000 --threads 1 --train-args "--test-fraction 0.1"
    python scripts/bench_scale.py --sizes 1000000,5000000 --backend spark

For each size and database: a fresh database (a temporary SQLite file; a new
PostgreSQL database on the server at --postgres), filled by `recsql generate` (timed
apart), then `recsql train` with no flags (recsql's one default; --train-args adds
some, --threads caps the threads), run as its own process so its peak resident memory
is measured.  Prints the plan the default chose, every phase's seconds (as stored in
the run's `models.timings`), the wall time of the whole command, the peak memory (of
the process and its children, sampled: a Spark retrain's JVM counts), and
test RMSE and NDCG@10 when the train arguments hold ratings out.  With --spark and
pyspark installed, Spark MLlib ALS (local[2], the rank and the number of sweeps recsql's
plan chose) fits the same ratings from memory for comparison (scripts/spark_peer.py); with --surprise and
scikit-surprise installed (`pip install 'recsql[bench]'`), Surprise's SVD (its
defaults, random_state 0) fits them in memory, its fit alone timed.

Users and movies default to MovieLens 25M's proportions (162,541 users and 59,047 movies
for 25,000,095 ratings).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

import recsql


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant (a Spark retrain's JVM is a child
    that outlives its waits, so the kernel's peak for the process misses it)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _watch_tree(pid: int, peak: list[int]) -> None:
    """Sample the process tree's resident memory every 0.2 s until ``pid`` is gone."""
    while os.path.exists(f"/proc/{pid}/statm"):
        peak[0] = max(peak[0], _tree_rss(pid))
        time.sleep(0.2)


PHASES = ("read", "fit", "items", "similarities", "recommendations", "evaluate", "write", "activate")


def run_train(url: str, train_args: str, prefix: tuple[str, ...] = ()) -> dict:
    """`recsql train` in a child process (after ``prefix``, e.g. a `taskset`): wall
    seconds, peak RSS, the run's stored timings."""
    command = [
        *prefix,
        sys.executable,
        "-m",
        "recsql",
        "--quiet",
        "--database-url",
        url,
        "train",
        *shlex.split(train_args),
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree_peak = [0]
    watcher = threading.Thread(target=_watch_tree, args=(child.pid, tree_peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    watcher.join()
    out, err = child.stdout.read(), child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train failed on {url}: {err.strip()}")
    engine = recsql.connect(url)
    model = recsql.list_models(engine)[0]
    engine.dispose()
    return {
        "wall_seconds": round(wall, 2),
        "peak_rss_gb": round(max(usage.ru_maxrss * 1024, tree_peak[0]) / 1024**3, 2),
        "phases": model.timings,
        "train_rmse": model.metrics["train_rmse"],
        "test_rmse": model.metrics.get("test_rmse"),
        "ndcg_at_10": model.metrics.get("ndcg_at_10"),
        "features": model.params["features"],
        "sweeps": model.params["max_iterations"],
        "plan": model.params.get("plan", ""),
        "output": out.strip(),
    }


def measure(size: dict, database: str, admin_url: str, train_args: str, ids: str = "integer") -> dict:
    with ExitStack() as stack:
        if database == "sqlite":
            url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
        else:
            from _scratch import scratch_postgres  # only the PostgreSQL side needs psycopg

            url = stack.enter_context(scratch_postgres(admin_url))
        engine = recsql.connect(url)
        started = time.perf_counter()
        generated = recsql.generate(engine, **size, seed=0, ids=ids)
        generate_wall = time.perf_counter() - started
        engine.dispose()
        result = run_train(url, train_args)
        result.update(
            database=database,
            **size,
            ids=ids,
            generate_seconds=generated.seconds,
            generate_wall_seconds=round(generate_wall, 2),
        )
        return result


def popular_quality(size: dict, test_fraction: float, seed: int = 0) -> dict[str, float]:
    """P/R/NDCG@10 of a most-popular list (by number of ratings, the user's own
    ratings left out) on the split `recsql train --test-fraction F --seed 0` makes of
    the same synthetic ratings: the baseline beside the stored lists' NDCG."""
    from recsql.algorithms.topk import block_rows, top_k_largest
    from recsql.data.matrix import RatingMatrix
    from recsql.data.synthetic import synthetic_ratings
    from recsql.evaluation.metrics import HeldOut, top_k_quality
    from recsql.evaluation.splits import split_random

    ratings = synthetic_ratings(size["ratings"], size["users"], size["movies"], seed=0).ratings
    matrix = RatingMatrix.from_triples(
        ratings.user_id.to_numpy(), ratings.movie_id.to_numpy(), ratings.value.to_numpy()
    )
    train, test = split_random(matrix, test_fraction, seed)
    held = HeldOut.of(train.user_ids, train.movie_ids, train, test)
    counts = np.bincount(train.cols, minlength=train.n_movies).astype(np.float32)
    top = np.empty((len(held.users), 10), dtype=np.int64)
    block = block_rows(train.n_movies)
    for start in range(0, len(held.users), block):
        rated = held.rated[held.users[start : start + block]]
        scores = np.broadcast_to(counts, rated.shape).copy()
        scores[np.repeat(np.arange(rated.shape[0]), np.diff(rated.indptr)), rated.indices] = -np.inf
        top[start : start + rated.shape[0]] = top_k_largest(scores, 10).indices
    return top_k_quality(top, held.relevant, 10)


def surprise_fit_seconds(size: dict) -> float:
    """Seconds Surprise's SVD (defaults, random_state 0) takes to fit the same synthetic
    ratings, already in memory as its trainset."""
    import surprise

    from recsql.data.synthetic import synthetic_ratings

    ratings = synthetic_ratings(size["ratings"], size["users"], size["movies"], seed=0).ratings
    data = surprise.Dataset.load_from_df(
        ratings[["user_id", "movie_id", "value"]], surprise.Reader(rating_scale=(0.5, 5.0))
    )
    trainset = data.build_full_trainset()
    started = time.perf_counter()
    surprise.SVD(random_state=0).fit(trainset)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--users", type=int)
    parser.add_argument("--movies", type=int)
    parser.add_argument("--sizes", help="comma-separated rating counts; users and movies scale with them")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL")
    parser.add_argument("--train-args", default="", help="flags for `recsql train` (default: none)")
    parser.add_argument("--threads", type=int, help="passed to `recsql train --threads`")
    parser.add_argument(
        "--backend",
        choices=["local", "spark"],
        default=None,
        help="passed to `recsql train --backend` (spark: on local[N], N the threads)",
    )
    parser.add_argument("--spark", action="store_true", help="also time Spark MLlib ALS (needs pyspark)")
    parser.add_argument("--surprise", action="store_true", help="also time Surprise's SVD fit (needs scikit-surprise)")
    parser.add_argument(
        "--popular",
        action="store_true",
        help="with --test-fraction in --train-args: most-popular's P/R/NDCG@10 on the same split",
    )
    parser.add_argument(
        "--ids",
        default="integer",
        choices=("integer", "text"),
        help="text: every user and movie known by a UUID key (generate --ids text)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.threads:
        args.train_args = f"{args.train_args} --threads {args.threads}".strip()
    if args.backend:
        args.train_args = f"{args.train_args} --backend {args.backend}".strip()
    counts = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.ratings]
    sizes = []
    for n in counts:
        sizes.append(
            {
                "ratings": n,
                "users": args.users if args.users and not args.sizes else max(10, round(n * 162541 / 25_000_095)),
                "movies": args.movies if args.movies and not args.sizes else max(10, round(n * 59047 / 25_000_095)),
            }
        )
    results = []
    for size in sizes:
        for database in args.databases.split(","):
            result = measure(size, database, args.postgres, args.train_args, args.ids)
            results.append(result)
            print(
                f"{database:<10} {size['ratings']:>10} ratings ({args.ids} ids): "
                f"{result['wall_seconds']:.1f} s end to end, "
                f"peak {result['peak_rss_gb']:.2f} GB; plan: {result['plan'] or '-'}; "
                f"phases {json.dumps(result['phases'])}",
                flush=True,
            )
    spark = None
    if args.spark:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from spark_peer import spark_als_fit_seconds

        from recsql.data.synthetic import synthetic_ratings

        size = sizes[-1]
        data = synthetic_ratings(size["ratings"], size["users"], size["movies"], seed=0)
        rank = results[-1]["features"]  # the rank and sweeps recsql's plan chose (or was given)
        sweeps = results[-1]["sweeps"]
        ratings = data.ratings
        spark = spark_als_fit_seconds(
            ratings.user_id.to_numpy(),
            ratings.movie_id.to_numpy(),
            ratings.value.to_numpy(),
            rank=rank,
            iterations=sweeps,
        )
        print(
            f"spark      {size['ratings']:>10} ratings: ALS fit {spark['fit_seconds']:.1f} s "
            f"(rank {rank}, {sweeps} iterations, from memory, BLAS {spark['blas']})"
        )

    popular = {}
    if args.popular:
        words = shlex.split(args.train_args)
        fraction = float(words[words.index("--test-fraction") + 1])
        for size in sizes:
            popular[size["ratings"]] = popular_quality(size, fraction)
            print(
                f"popular    {size['ratings']:>10} ratings: most popular on the same split "
                f"{json.dumps({k: round(v, 4) for k, v in popular[size['ratings']].items()})}"
            )
    peers = {}
    if args.surprise:
        for size in sizes:
            peers[size["ratings"]] = surprise_fit_seconds(size)
            print(f"surprise   {size['ratings']:>10} ratings: SVD fit {peers[size['ratings']]:.1f} s (from memory)")

    print()
    print(f"`recsql train {args.train_args}`, seconds per phase; wall = the whole command; peak = its max RSS")
    print()
    held_out = any(r["test_rmse"] is not None for r in results)
    extra = " test RMSE | NDCG@10 |" if held_out else ""
    print("| database | ratings | users | movies | " + " | ".join(PHASES) + " | wall s | peak GB |" + extra)
    print("|" + "---|" * (len(PHASES) + 6 + (2 if held_out else 0)))
    for r in results:
        phases = " | ".join(f"{r['phases'].get(p, 0):.1f}" for p in PHASES)
        scores = f" {r['test_rmse']:.4f} | {r['ndcg_at_10']:.3f} |" if held_out else ""
        print(
            f"| {r['database']} | {r['ratings']:,} | {r['users']:,} | {r['movies']:,} | {phases} | "
            f"{r['wall_seconds']:.1f} | {r['peak_rss_gb']:.2f} |{scores}"
        )
    for r in results:
        print(f"\n{r['database']} {r['ratings']:,}: {r['plan']}", end="")
    print()
    for r in results:
        if r["ratings"] in peers:
            print(
                f"\n{r['database']} {r['ratings']:,}: whole retrain {r['wall_seconds']:.1f} s = "
                f"{r['wall_seconds'] / peers[r['ratings']]:.2f} x Surprise SVD's fit alone "
                f"({peers[r['ratings']]:.1f} s)",
                end="",
            )
    if spark:
        last = [r for r in results if r["ratings"] == sizes[-1]["ratings"]]
        for r in last:
            print(
                f"\n{r['database']}: whole retrain {r['wall_seconds']:.1f} s = "
                f"{r['wall_seconds'] / spark['fit_seconds']:.2f} x Spark's fit alone ({spark['fit_seconds']:.1f} s)"
            )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "spark": spark}, indent=2, default=str))


if __name__ == "__main__":
    main()

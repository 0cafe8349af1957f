#!/usr/bin/env python3
"""Peer benchmark: how long Apache Spark MLlib's ALS takes to *fit* explicit ratings.

    python scripts/spark_peer.py --ratings N --users U --movies M --rank R
                                 [--iterations 10] [--regularization 0.1]

What is measured, and why: a benchmark of recsql reports how long our own
factorization takes; this helper gives the number a well-known peer needs for the same
job on the same machine, so the two can be printed side by side.  To keep the
comparison fair *to Spark*, only Spark's training is timed:

* the ratings are already in memory (numpy arrays) — no database, no SQL, no CSV parsing;
* they are handed to Spark (through a temporary Parquet file written with pyarrow) and
  the DataFrame is cached and materialized with ``count()`` *before* the clock starts;
  that part is reported separately as ``load_seconds``;
* ``fit_seconds`` covers only ``ALS(...).fit(df)`` plus a ``count()`` of both factor
  tables.  Spark's ALS ``fit`` is eager (it trains and materializes the factors before
  returning); the counts are a cheap guarantee that no training work is left pending.

Spark runs in local mode on ``local[2]`` (two cores, like this project's machines) with
a 12 GB driver heap, enough for 25 million ratings.  ``rmse_train_sample`` is the
model's RMSE on a 1 % sample of its own training data: a sanity check that the fit
really learned something, not a measure of accuracy.

Requires ``pip install 'pyspark>=3.5' pyarrow`` and a Java runtime (17 or later for
Spark 4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

INT32_MAX = np.iinfo(np.int32).max
INT32_MIN = np.iinfo(np.int32).min
PANDAS_WARNING = ".*does not yet fully support pandas.*"  # pyspark 4 vs pandas 3; ALS here uses no pandas

# Driver JVM logging: errors only.  (Spark still prints its own two "Setting default log
# level" lines at start-up, and netlib its two dlopen lines when there is no system BLAS.)
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def _require_pyspark():
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PANDAS_WARNING)
            from pyspark.ml.recommendation import ALS
            from pyspark.sql import SparkSession
            from pyspark.sql import functions as F
    except ImportError as exc:
        raise ImportError("pyspark is not installed: pip install 'pyspark>=3.5'") from exc
    return SparkSession, ALS, F


def _id_column(ids: np.ndarray, name: str) -> np.ndarray:
    """Spark's ALS needs ids that fit a Java int; send them as int32 (half the bytes)."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < INT32_MIN or ids.max() > INT32_MAX):
        raise ValueError(f"{name} must fit in a 32-bit integer for Spark's ALS")
    return ids.astype(np.int32, copy=False)


def _start_spark(SparkSession, workdir: str, driver_memory: str):
    log_config = os.path.join(workdir, "log4j2.properties")
    with open(log_config, "w") as f:
        f.write(_LOG4J2)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("recsql-spark-peer")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", os.path.join(workdir, "spark-local"))
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _jvm_blas(spark) -> str:
    """Which BLAS Spark's ALS ran on: netlib's native binding (the system's libblas.so.3,
    e.g. Debian's OpenBLAS) or its pure-Java fallback.  Said beside every figure, since
    the fallback makes Spark's solves slower."""
    try:
        blas = spark.sparkContext._jvm.dev.ludovic.netlib.blas.BLAS.getInstance()
        return str(blas.getClass().getSimpleName())
    except Exception:  # noqa: BLE001 - the name is a report, never a reason to fail
        return "unknown"


def spark_als_fit_seconds(
    user_ids,
    movie_ids,
    values,
    rank: int,
    iterations: int = 10,
    regularization: float = 0.1,
    seed: int = 0,
    driver_memory: str = "12g",
) -> dict:
    """Time Spark MLlib ALS's fit on explicit ratings already in memory.

    ``user_ids``, ``movie_ids`` (int64) and ``values`` (float64) are equal-length numpy
    arrays.  Returns ``fit_seconds`` (ALS fit only, data already cached in Spark),
    ``load_seconds`` (arrays -> cached, counted Spark DataFrame), ``spark_version`` and
    ``rmse_train_sample`` (RMSE on a 1 % sample of the training ratings).  Starts and
    stops its own local[2] SparkSession.
    """
    SparkSession, ALS, F = _require_pyspark()
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if not (len(user_ids) == len(movie_ids) == n):
        raise ValueError("user_ids, movie_ids and values must have the same length")
    if n == 0:
        raise ValueError("no ratings to fit")

    workdir = tempfile.mkdtemp(prefix="recsql-spark-peer-")
    spark = None
    df = None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING)
        try:
            spark = _start_spark(SparkSession, workdir, driver_memory)

            # Load: arrays -> Parquet (pyarrow, in-process) -> Spark DataFrame, cached + counted.
            started = time.perf_counter()
            table = pa.table(
                {
                    "user": _id_column(user_ids, "user_ids"),
                    "item": _id_column(movie_ids, "movie_ids"),
                    "rating": values,
                }
            )
            path = os.path.join(workdir, "ratings.parquet")
            # Several row groups so Spark reads the file with both cores.
            pq.write_table(table, path, row_group_size=1_000_000, compression="snappy")
            del table
            df = spark.read.parquet(path).cache()
            loaded = df.count()
            load_seconds = time.perf_counter() - started
            if loaded != n:
                raise RuntimeError(f"Spark loaded {loaded} rows, expected {n}")

            # Fit: the only thing timed for the comparison.
            started = time.perf_counter()
            als = ALS(
                rank=rank,
                maxIter=iterations,
                regParam=regularization,
                seed=seed,
                userCol="user",
                itemCol="item",
                ratingCol="rating",
                coldStartStrategy="drop",
            )
            model = als.fit(df)
            model.userFactors.count()
            model.itemFactors.count()
            fit_seconds = time.perf_counter() - started

            # Sanity check, outside the timing: RMSE on a 1% sample of the training data.
            sample = df.sample(fraction=0.01, seed=seed)
            row = (
                model.transform(sample)
                .agg(F.sqrt(F.avg((F.col("prediction") - F.col("rating")) ** 2)).alias("rmse"))
                .collect()[0]
            )
            rmse = None if row["rmse"] is None else round(float(row["rmse"]), 4)

            return {
                "blas": _jvm_blas(spark),
                "fit_seconds": round(fit_seconds, 3),
                "load_seconds": round(load_seconds, 3),
                "spark_version": spark.version,
                "rmse_train_sample": rmse,
                "ratings": n,
                "rank": rank,
                "iterations": iterations,
                "regularization": regularization,
                "master": "local[2]",
            }
        finally:
            if df is not None:
                try:
                    df.unpersist()
                except Exception:  # noqa: BLE001 - best-effort cleanup after the timing
                    pass
            if spark is not None:
                spark.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--movies", type=int, required=True)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--driver-memory", default="12g")
    args = parser.parse_args(argv)

    from recsql.data.synthetic import synthetic_ratings

    data = synthetic_ratings(args.ratings, args.users, args.movies, seed=0)
    result = spark_als_fit_seconds(
        data.ratings.user_id.to_numpy(),
        data.ratings.movie_id.to_numpy(),
        data.ratings.value.to_numpy(),
        rank=args.rank,
        iterations=args.iterations,
        regularization=args.regularization,
        seed=args.seed,
        driver_memory=args.driver_memory,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

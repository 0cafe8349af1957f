"""The ratings as a Spark DataFrame of ``user``, ``movie`` (recsql's integer ids) and
``value``, duplicates already resolved.

PostgreSQL is read by Spark itself over JDBC, in partitions by user id between the
smallest and largest id (so a cluster's executors read in parallel and the driver never
holds the ratings).  Everything else (SQLite, a source with text keys, ``duplicates =
"last"``, which needs the rows in time order) goes through recsql's own reader
(:func:`~recsql.data.ratings.ratings_from_database`) and is handed to Spark
(:func:`frame_of_matrix`): those are one-machine cases anyway.
"""

from __future__ import annotations

import getpass
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import ratings_select
from recsql.data.source import Source, reading
from recsql.db.engine import schema_of
from recsql.db.timeouts import milliseconds
from recsql.errors import InvalidParameter, NoRatings
from recsql.spark.session import SparkSettings

JDBC_FETCH_SIZE = 50_000
SCRATCH_KEY = "spark.local.dir"  # recsql's session sets it to its own scratch folder
_frames = itertools.count()
INT32 = np.iinfo(np.int32)  # MLlib's ALS takes Java ints as ids


def reads_over_jdbc(engine: Engine, duplicates: DuplicatePolicy, source: Source | None) -> bool:
    """Whether Spark reads these ratings itself (see the module docstring)."""
    return engine.dialect.name == "postgresql" and duplicates != "last" and (source is None or source.ids != "text")


def jdbc_ratings(
    spark: Any, engine: Engine, settings: SparkSettings, duplicates: DuplicatePolicy, source: Source | None
) -> Any:
    """The ratings as Spark reads them over JDBC (:func:`reads_over_jdbc` cases), one
    per (user, movie)."""
    return _resolved(_jdbc_frame(spark, engine, settings, source), duplicates)


def frame_of_matrix(spark: Any, matrix: RatingMatrix, *, local_file: bool | None = None) -> Any:
    """A rating matrix's cells as a DataFrame whose plan does not hold them.

    A DataFrame made from the pandas frame (Arrow) carries the rows in its plan, and
    every query over it pays for that: 1 M ratings on local[2] fitted in 96 s from it,
    25 s from a Parquet file and 26 s from a JDBC read.  So on a ``local[...]`` master
    (``local_file``, by default) the cells go through a Parquet file in the session's
    scratch folder (written in 1.5 s); a cluster's executors cannot read the driver's
    folder, so there the Arrow frame is checkpointed once (Spark's checkpoint
    directory, ``recsql.checkpoint.dir``, which every executor reaches) and read from
    there: 5.2 s, then a 24.5 s fit, on local[2]."""
    users, movies, values = matrix.triples()
    _check_int32(users, movies)
    frame = pd.DataFrame(
        {"user": users.astype(np.int32), "movie": movies.astype(np.int32), "value": values.astype(np.float64)}
    )
    if local_file is None:
        local_file = spark.sparkContext.master.startswith("local")
    if not local_file:
        return spark.createDataFrame(frame).checkpoint(eager=True)
    folder = Path(spark.conf.get(SCRATCH_KEY)) / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ratings-{next(_frames)}.parquet"
    frame.to_parquet(path, index=False)
    return spark.read.parquet(str(path))


def matrix_of_frame(frame: Any, duplicates: DuplicatePolicy = "max") -> RatingMatrix:
    """A DataFrame's ratings on the driver, as recsql's matrix (for the lists and metrics
    computed locally)."""
    table = to_pandas(frame.select("user", "movie", "value"))
    return RatingMatrix.from_triples(
        table["user"].to_numpy(np.int64),
        table["movie"].to_numpy(np.int64),
        table["value"].to_numpy(np.float64),
        duplicates,
    )


def to_pandas(frame: Any) -> pd.DataFrame:
    """A (small, or driver-sized) DataFrame's rows on the driver."""
    if hasattr(frame, "toArrow"):  # pyspark 4: Arrow straight from the JVM
        return frame.toArrow().to_pandas()
    return frame.toPandas()


def _check_int32(users: np.ndarray, movies: np.ndarray) -> None:
    for name, ids in (("user", users), ("movie", movies)):
        if ids.size and (ids.min() < INT32.min or ids.max() > INT32.max):
            raise InvalidParameter(
                f"Spark's ALS needs {name} ids that fit 32 bits; these span {ids.min()}..{ids.max()}"
            )


def jdbc_url(engine: Engine) -> tuple[str, dict[str, str]]:
    """The engine's PostgreSQL URL as JDBC's, and the connection properties."""
    url = engine.url
    host = url.host or "localhost"
    jdbc = f"jdbc:postgresql://{host}:{url.port or 5432}/{url.database or ''}"
    properties = {"driver": "org.postgresql.Driver", "user": url.username or getpass.getuser()}  # libpq's default too
    if url.password:
        properties["password"] = str(url.password)
    for key, value in url.query.items():  # sslmode and friends mean the same to JDBC
        properties[key] = value if isinstance(value, str) else value[-1]
    return jdbc, properties


def _jdbc_frame(spark: Any, engine: Engine, settings: SparkSettings, source: Source | None) -> Any:
    # JDBC's connections have the role's own search_path: recsql's table is named in its
    # schema; a source's names resolve in the application's namespace, as recsql's own reads do.
    sql = ratings_select(schema_of(engine))
    with reading(engine, source) as conn:
        if source is not None:
            sql = source.ratings_sql(conn)
        table = f"({sql}) AS recsql_ratings (recsql_user, recsql_movie, recsql_value)"
        low, high, movie_low, movie_high = conn.execute(
            text(f"SELECT MIN(recsql_user), MAX(recsql_user), MIN(recsql_movie), MAX(recsql_movie) FROM {table}")
        ).one()
    if low is None:
        where = "the source's ratings" if source else "recsql's ratings table"
        raise NoRatings(f"there are no ratings to train on in {where}; import some with `recsql import ratings FILE`")
    _check_int32(np.array([low, high]), np.array([movie_low, movie_high]))  # the casts below must not wrap
    url, properties = jdbc_url(engine)
    properties["fetchsize"] = str(settings.recsql_int("recsql.jdbc.fetchsize", JDBC_FETCH_SIZE))
    if source is not None:  # the executors read the application's tables read-only, time-bounded, as its role
        init = [
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            f"SET statement_timeout = '{milliseconds(source.timeout)}'",
        ]
        properties["sessionInitStatement"] = "; ".join(init + ([f'SET ROLE "{source.role}"'] if source.role else []))
    partitions = settings.recsql_int("recsql.jdbc.partitions", 2 * spark.sparkContext.defaultParallelism)
    frame = spark.read.jdbc(
        url,
        table,
        column="recsql_user",
        lowerBound=int(low),
        upperBound=int(high) + 1,
        numPartitions=max(1, min(partitions, int(high) - int(low) + 1)),
        properties=properties,
    )
    return frame.selectExpr(
        "CAST(recsql_user AS INT) AS user",
        "CAST(recsql_movie AS INT) AS movie",
        "CAST(recsql_value AS DOUBLE) AS value",
    )


def _resolved(frame: Any, duplicates: DuplicatePolicy) -> Any:
    """One rating per (user, movie): the largest or the mean of repeats ("last" is read
    locally, see the module docstring)."""
    from pyspark.sql import functions as F

    combine = F.max if duplicates == "max" else F.avg
    return frame.groupBy("user", "movie").agg(combine("value").alias("value"))

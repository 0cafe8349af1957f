"""What the Spark backend's test files share: the master they run on, the command line of
a Spark retrain, and the checks that skip (or, under CI, fail) without Spark."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import recsql
from recsql.spark.session import jdbc_jar
from tests.conftest import _missing

MASTER = "local[2]"
SPARK_TRAIN = ("train", "--backend", "spark", "--spark-master", MASTER)


def require_spark(jdbc: bool) -> None:
    if importlib.util.find_spec("pyspark") is None or not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        _missing("the Spark backend tests need pyspark and Java: pip install -e '.[test,spark]'")
    if jdbc and jdbc_jar() is None:
        _missing("the Spark backend's PostgreSQL tests need the JDBC driver: apt-get install libpostgresql-jdbc-java")


def recsql_cli(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsql", "--quiet", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def active(engine) -> int:
    return next(m.model_id for m in recsql.list_models(engine) if m.status == "active")

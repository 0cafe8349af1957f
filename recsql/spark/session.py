"""Starting and stopping the SparkSession a Spark retrain runs in.

Everything a user can get wrong here (no pyspark, no Java, no JDBC driver, a master URL
Spark cannot use) becomes one :class:`~recsql.errors.EngineUnavailable` with the fix in
its message.  Settings come as ``--spark-conf key=value`` pairs: ``spark.*`` keys go to
Spark unchanged; ``recsql.*`` keys are recsql's own (:data:`RECSQL_KEYS`), read here and
never passed on (Spark would only warn about them).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsql.errors import EngineUnavailable, InvalidParameter
from recsql.threads import thread_count

DEFAULT_MASTER = "local[*]"
PANDAS_WARNING = ".*does not yet fully support pandas.*"
# The forms Spark's submit accepts (checked here so a typo is refused before the run starts).
MASTER_URL = re.compile(r"^(local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[[\d, ]+\]|spark://\S+|yarn|k8s://\S+)$")
JDBC_JAR_ENV = "RECSQL_JDBC_JAR"
PYTHON_ENV = "PYSPARK_PYTHON"
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")  # the driver JVM's logging
DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")  # Debian's libpostgresql-jdbc-java
JDBC_PACKAGE = "org.postgresql:postgresql:42.7.4"  # what a cluster without the jar asks Maven for
LOCAL_DRIVER_MEMORY = "4g"  # a local master's whole Spark lives in the driver; 1g (Spark's) is too small
RECSQL_KEYS = {
    "recsql.jdbc.partitions": "JDBC read partitions (default: twice Spark's default parallelism)",
    "recsql.jdbc.fetchsize": "rows per JDBC round trip (default 50000)",
    "recsql.checkpoint.dir": "where ALS checkpoints its lineage (default: a temporary directory; "
    "on a cluster, a path every executor can reach, e.g. hdfs://...)",
    "recsql.warmup.sweeps": "sweeps of the short fit the biases are re-estimated against "
    "(default: half of --max-iterations; 0: none)",
    "recsql.lists": "where the stored lists are computed: driver, spark or auto (default: "
    "spark on a cluster master past 10^10 user x movie cells)",
}


@dataclass(frozen=True)
class SparkSettings:
    """Where and how Spark runs: ``master`` (``local[*]``, ``spark://host:7077``, ``yarn``,
    ``k8s://...``) and ``conf``, the ``--spark-conf`` pairs."""

    master: str = DEFAULT_MASTER
    conf: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, master: str | None, conf: Sequence[str] | Mapping[str, str] | None) -> SparkSettings:
        """Settings from the CLI's and API's arguments; bad pairs raise InvalidParameter."""
        pairs = dict(conf) if isinstance(conf, Mapping) else parse_conf(conf or ())
        unknown = sorted(k for k in pairs if k.startswith("recsql.") and k not in RECSQL_KEYS)
        if unknown:
            raise InvalidParameter(f"unknown recsql setting {unknown[0]!r}; known: {', '.join(RECSQL_KEYS)}")
        if not master:
            master = DEFAULT_MASTER
        if not MASTER_URL.match(master):
            raise InvalidParameter(
                f"--spark-master {master!r} is not a Spark master URL: use local[N], local[*], "
                "spark://HOST:PORT, yarn or k8s://https://HOST:PORT"
            )
        return cls(master=master, conf=pairs)

    def spark_conf(self) -> dict[str, str]:
        return {k: v for k, v in self.conf.items() if not k.startswith("recsql.")}

    def recsql_int(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.conf.get(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise InvalidParameter(f"{key} must be a whole number of at least {minimum}, not {value!r}")
        return number

    def recsql_choice(self, key: str, choices: tuple[str, ...]) -> str:
        """The setting ``key``, one of ``choices`` (the first when unset)."""
        value = self.conf.get(key, choices[0])
        if value not in choices:
            raise InvalidParameter(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        return value

    @property
    def is_local(self) -> bool:
        """Whether Spark runs inside this process's machine (``local[...]``)."""
        return self.master.startswith("local")


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """``["spark.executor.memory=8g", ...]`` as a dict; a pair without ``=`` is refused."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"--spark-conf takes key=value, not {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def require_pyspark() -> None:
    """Raise EngineUnavailable, saying what to install, unless pyspark and Java are here."""
    # pyspark 4.x warns, at import and at conversions, that it does not "fully support"
    # pandas 3; the columns recsql converts are plain numbers, so it only alarms users.
    warnings.filterwarnings("ignore", message=PANDAS_WARNING)
    try:
        import pyspark  # noqa: F401 - the package, and the parts recsql uses
        from pyspark.ml.recommendation import ALS  # noqa: F401
        from pyspark.sql import SparkSession  # noqa: F401
    except ImportError:
        raise EngineUnavailable(
            "the Spark backend needs pyspark: pip install 'recsql[spark]' (and a Java 17+ runtime)"
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineUnavailable(
            "the Spark backend needs a Java 17+ runtime: install one (Debian: apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )


def jdbc_jar() -> Path | None:
    """PostgreSQL's JDBC driver on this machine: ``$RECSQL_JDBC_JAR``, else Debian's."""
    named = os.environ.get(JDBC_JAR_ENV)
    if named:
        return Path(named) if Path(named).is_file() else None
    return DEBIAN_JDBC_JAR if DEBIAN_JDBC_JAR.is_file() else None


def _conf_with_defaults(settings: SparkSettings, workdir: Path, jdbc: bool) -> dict[str, str]:
    conf = {
        "spark.app.name": "recsql",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(max(2, 2 * thread_count())),
        "spark.local.dir": str(workdir / "local"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if settings.is_local:
        conf["spark.driver.memory"] = LOCAL_DRIVER_MEMORY
    conf.update(settings.spark_conf())
    # Spark's own start-up lines are noise beside recsql's progress; a user's options
    # come after recsql's file, so a -Dlog4j2.configurationFile of theirs wins.
    quiet = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    conf["spark.driver.extraJavaOptions"] = " ".join(filter(None, [quiet, conf.get("spark.driver.extraJavaOptions")]))
    if jdbc and not ({"spark.jars", "spark.jars.packages"} & conf.keys()):
        jar = jdbc_jar()
        if jar is None:
            raise EngineUnavailable(
                "reading PostgreSQL from Spark needs its JDBC driver: install Debian's "
                f"libpostgresql-jdbc-java, set ${JDBC_JAR_ENV} to the jar, or pass "
                f"--spark-conf spark.jars.packages={JDBC_PACKAGE}"
            )
        conf["spark.jars"] = str(jar)
    return conf


@contextmanager
def spark_session(settings: SparkSettings, *, jdbc: bool = False) -> Iterator[Any]:
    """A SparkSession on ``settings.master``, stopped (and its scratch files removed) on
    exit.  ``jdbc``: the session will read PostgreSQL, so put its driver on the classpath.
    ALS's checkpoint directory is set, so long fits do not overflow the lineage."""
    require_pyspark()
    from pyspark.sql import SparkSession

    workdir = Path(tempfile.mkdtemp(prefix="recsql-spark-"))
    spark = None
    python = os.environ.get(PYTHON_ENV)
    if settings.is_local and python is None:
        # Tasks that run recsql's code (lists in Spark) need this interpreter's packages;
        # pyspark starts its workers with $PYSPARK_PYTHON, else whatever "python3" is first
        # on the PATH.  A cluster's executors are set up by their operator (README).
        os.environ[PYTHON_ENV] = sys.executable
    try:
        builder = SparkSession.builder.master(settings.master)
        for key, value in _conf_with_defaults(settings, workdir, jdbc).items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # py4j and Spark raise many kinds; the user needs one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineUnavailable(f"Spark could not start on master {settings.master!r}: {reason}") from exc
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(settings.conf.get("recsql.checkpoint.dir") or str(workdir / "checkpoints"))
        yield spark
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if python is None:
            os.environ.pop(PYTHON_ENV, None)

"""Spark retrains that change the database in the ways a run can end: failing to start,
killed mid-fit, holding out a share.  Apart from tests/test_spark.py (whose module
fixture trains a Spark model the other checks read) so the two can run side by side
(`pytest -n 2 --dist loadfile`); these need only the ratings and a previous model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import recsql
from recsql.data.ratings import ratings_from_database
from recsql.evaluation.splits import split_random
from recsql.progress import STALL_ENV, STALL_MARK
from tests.spark_support import SPARK_TRAIN
from tests.spark_support import active as _active
from tests.spark_support import recsql_cli as _recsql
from tests.spark_support import require_spark as _require_spark


@pytest.fixture(scope="module")
def trained(module_db_url, ml100k):
    """u1.base in the database and a quick local model to fall back on."""
    dialect = module_db_url.split(":")[0].split("+")[0]
    _require_spark(jdbc=dialect == "postgresql")
    engine = recsql.connect(module_db_url)
    recsql.import_ratings(engine, ml100k / "u1.base")
    recsql.train(engine, samples=0, features=4)
    yield {"engine": engine, "url": module_db_url, "dialect": dialect}
    engine.dispose()


def test_spark_that_cannot_start_is_a_failed_run_and_changes_nothing(trained):
    engine = trained["engine"]
    before = _active(engine)
    done = _recsql(trained["url"], "train", "--backend", "spark", "--spark-master", "local[0]")
    assert done.returncode == 1
    assert "Spark could not start on master 'local[0]'" in done.stderr and "Traceback" not in done.stderr
    models = recsql.list_models(engine)
    assert models[0].status == "failed" and "Spark could not start" in models[0].error
    assert _active(engine) == before


def test_a_spark_retrain_killed_mid_fit_leaves_the_previous_model(trained):
    """SIGKILL while Spark fits: the run is dead, the previous model still serves, and
    Spark's JVM (a child that watches its parent's pipe) goes with the process."""
    engine = trained["engine"]
    before = _active(engine)
    child = subprocess.Popen(
        [sys.executable, "-m", "recsql", "--quiet", "--database-url", trained["url"], *SPARK_TRAIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, STALL_ENV: "fit"},
    )
    assert child.stderr is not None
    try:
        lines = []
        for line in child.stderr:  # Spark's own start-up lines come first
            lines.append(line)
            if line.startswith(STALL_MARK):
                break
        assert lines and lines[-1].startswith(STALL_MARK), "".join(lines)
        jvms = subprocess.run(["pgrep", "-P", str(child.pid)], capture_output=True, text=True).stdout.split()
        assert jvms, "Spark's JVM should be running beside the stalled retrain"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        recsql.list_models(engine)[0].status != "dead" or any(os.path.exists(f"/proc/{pid}") for pid in jvms)
    ):
        time.sleep(0.2)
    models = recsql.list_models(engine)
    assert models[0].status == "dead"
    assert not [pid for pid in jvms if os.path.exists(f"/proc/{pid}")], "Spark's JVM outlived the retrain"
    assert _active(engine) == before


def test_a_held_out_share_is_the_local_engines_split(trained):
    """--test-fraction on Spark holds out the same ratings the local backend would, and
    Spark scores a fit on only the rest (read over JDBC or handed over, split on the
    driver), then stores the model refitted on every rating, as the local backend does."""
    engine = trained["engine"]
    refit = engine.dialect.name == "postgresql"  # (on SQLite --no-refit: a Spark fit costs a minute here)
    done = _recsql(trained["url"], *SPARK_TRAIN, "--test-fraction", "0.2", *([] if refit else ["--no-refit"]))
    assert done.returncode == 0, done.stderr
    model = recsql.list_models(engine)[0]
    train, test = split_random(ratings_from_database(engine), 0.2, 0)
    assert model.status == "active" and model.metrics["n_test"] + model.metrics["n_test_skipped"] == test.nnz
    assert model.metrics["n_train"] == train.nnz
    if refit:
        assert model.metrics["scored_fit_ratings"] == train.nnz and model.metrics["refit"] is True
        assert model.n_ratings == train.nnz + test.nnz
    else:
        assert model.n_ratings == train.nnz
    assert model.metrics["test_rmse"] < 0.98

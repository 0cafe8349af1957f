"""A writer that loses its lock while it works stops before it changes anything, and
the lock's connection outlives the idle timeouts an operator may set.

Real `recsql train` processes, stalled at a known phase (RECSQL_STALL), have their
lock taken from them (PostgreSQL: the lock's backend ended by pg_terminate_backend;
SQLite: the lock file deleted), a second writer trains meanwhile, then they go on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import recsql
from recsql.db.engine import normalize_url
from recsql.progress import STALL_ENV, STALL_MARK
from tests.conftest import SMALL_RATINGS, Cli


def _stalled_train(url: str, phase: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsql",
            "--quiet",
            "--database-url",
            url,
            "train",
            "--samples",
            "0",
            "--features",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, STALL_ENV: phase},
    )
    assert child.stderr is not None
    line = child.stderr.readline()
    assert line.startswith(STALL_MARK), line + child.communicate()[1]
    return child


def _take_the_lock_away(url: str) -> None:
    """What an operator or a network does to a writer: its lock is gone, its process lives."""
    if url.startswith("sqlite"):
        os.remove(f"{make_url(url).database}.recsql-lock")
        return
    admin = create_engine(normalize_url(url))
    with admin.begin() as conn:
        ended = (
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE relation = to_regclass('recsql_lock') AND mode = 'ExclusiveLock' AND granted"
                )
            )
            .scalars()
            .all()
        )
    admin.dispose()
    assert ended == [True]


def _statuses(engine) -> dict[int, str]:
    return {m.model_id: m.status for m in recsql.list_models(engine)}


@pytest.mark.parametrize("phase", ["fit", "activate"])
def test_a_writer_that_lost_its_lock_changes_nothing(db_url, small_trained, phase):
    """The first writer loses its lock mid-retrain (before writing, or with its model
    written and ready); a second one trains and activates; the first then stops with
    one line and never writes, marks ready or activates its run over the second's."""
    child = _stalled_train(db_url, phase)
    try:
        _take_the_lock_away(db_url)
        # pg_terminate_backend only signals: the ended backend may hold the lock a moment longer
        second = recsql.train(small_trained, samples=0, features=2, wait=30)
        # The second writer marked the first's run failed (and pruned its rows).
        assert _statuses(small_trained) == {1: "retired", 2: "pruned", 3: "active"} and second.model_id == 3
        child.send_signal(signal.SIGUSR1)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 1, err
    assert "lost its writer lock" in err and "Traceback" not in err
    assert _statuses(small_trained) == {1: "retired", 2: "pruned", 3: "active"}
    assert sum(recsql.output_counts(small_trained, 2).values()) == 0  # nothing of the first run's is left
    assert recsql.Recommender(small_trained).load() == 3


def test_the_lock_outlives_idle_session_timeout(postgresql_url, tmp_path):
    """With the database's idle_session_timeout shorter than a retrain, the lock's
    connection (idle while the fit computes) and the pooled ones still serve the run."""
    (tmp_path / "r.csv").write_text(SMALL_RATINGS)
    Cli(postgresql_url)("import", "ratings", tmp_path / "r.csv")
    admin = create_engine(normalize_url(postgresql_url), isolation_level="AUTOCOMMIT")
    name = make_url(normalize_url(postgresql_url)).database
    with admin.connect() as conn:
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET idle_session_timeout = '1s'"))
    child = _stalled_train(postgresql_url, "fit")
    try:
        time.sleep(2.5)  # every idle session of the database has been ended by now
        child.send_signal(signal.SIGUSR1)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "model 1 (als) is active" in out
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" RESET idle_session_timeout'))
    admin.dispose()

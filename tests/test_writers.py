"""One writer at a time, and runs whose process died: refused, waited for, reclaimed,
by real processes killed mid-retrain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

import recsql
from recsql.db.lock import writer_lock
from recsql.db.tables import RUNNING, Model
from recsql.progress import STALL_ENV, STALL_MARK


def _active(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT model_id FROM active_model")).scalar_one()


def test_a_second_writer_is_refused_or_waits(small_trained, run):
    with writer_lock(small_trained):
        out = run("train", "--samples", 0, ok=False).output
        assert "another recsql writer" in out and "--wait" in out
        assert "did not finish within 0.3 s" in run("train", "--samples", 0, "--wait", 0.3, ok=False).output
        assert "another recsql writer" in run("models", "prune", ok=False).output
        assert "another recsql writer" in run("models", "activate", 1, ok=False).output
    assert [m.status for m in recsql.list_models(small_trained)] == ["active"]  # the refusals wrote nothing
    run("train", "--samples", 0, "--wait", 5)
    assert [m.status for m in recsql.list_models(small_trained)] == ["active", "retired"]


def test_a_waiting_writer_goes_on_when_the_lock_is_released(small_trained, run):
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with writer_lock(small_trained):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    run("train", "--samples", 0, "--wait", 20)
    assert time.monotonic() - started >= 0.9  # it waited for the other writer
    thread.join()
    assert [m.status for m in recsql.list_models(small_trained)] == ["active", "retired"]


def test_a_dead_run_is_shown_as_dead_and_reclaimed(small_trained, run):
    before = _active(small_trained)
    with small_trained.begin() as conn:  # what a retrain killed mid-write leaves behind
        dead = conn.execute(
            Model.__table__.insert()
            .values(
                created_at=datetime.now(UTC),
                status=RUNNING,
                algorithm="als",
                params={},
            )
            .returning(Model.id)
        ).scalar_one()
        conn.execute(text(f"INSERT INTO movie_features VALUES ({dead}, 1, 0, 0.5), ({dead}, 2, 0, 0.25)"))
    assert recsql.list_models(small_trained)[0].status == "dead"
    with writer_lock(small_trained):  # while a writer holds the lock, a running model is alive
        assert recsql.list_models(small_trained)[0].status == "running"
    assert _active(small_trained) == before
    run("train", "--samples", 0)
    reclaimed = next(m for m in recsql.list_models(small_trained) if m.model_id == dead)
    # Marked failed with the reason, then pruned by the retrain's --keep: rows gone, history kept.
    assert reclaimed.status == "pruned" and "process stopped" in reclaimed.error
    assert sum(recsql.output_counts(small_trained, dead).values()) == 0


# Where a retrain is killed: each phase as it starts, a write with some of its tables
# committed (PostgreSQL commits each table on its own), and the moment between the
# version being ready and it becoming active.  "read" comes before the run's row exists.
PHASES = ["read", "fit", "items", "similarities", "recommendations", "evaluate", "write", "write:2", "activate"]
KILLS = [(phase, signal.SIGKILL) for phase in PHASES] + [
    (phase, stop) for phase in ("fit", "write:2", "activate") for stop in (signal.SIGTERM, signal.SIGINT)
]


def _served(engine) -> dict[str, list[tuple]]:
    """Everything an application reads: every row of every view, in a fixed order."""
    active = "WHERE model_id = (SELECT model_id FROM active_model)"
    queries = [
        f"SELECT * FROM {view}" for view in ("active_model", "similar_movies", "recommended_movies", "popular_movies")
    ]
    queries += [f"SELECT * FROM {table} {active}" for table in ("user_features", "movie_features")]
    with engine.connect() as conn:
        return {query: sorted(map(tuple, conn.execute(text(query)))) for query in queries}


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "stop"), KILLS, ids=[f"{p}-{s.name}" for p, s in KILLS])
def test_a_retrain_killed_anywhere_leaves_the_previous_model(db_url, small_trained, phase, stop):
    """A real `recsql train` stopped at each point: the views return exactly the previous
    model's rows, the run is never left 'running' (failed with the reason, or dead), and
    the next retrain succeeds and reclaims every row the killed run wrote."""
    before = _served(small_trained)
    child = subprocess.Popen(
        [sys.executable, "-m", "recsql", "--quiet", "--database-url", db_url, "train", "--samples", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, STALL_ENV: phase, "PYTHONFAULTHANDLER": "1"},
    )
    assert child.stderr is not None
    try:
        line = child.stderr.readline()  # blocks until the child stalls where we asked
        assert line.startswith(STALL_MARK), line + child.communicate()[1]
        child.send_signal(stop)
        try:
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a hang: SIGABRT makes faulthandler print every thread
            child.send_signal(signal.SIGABRT)
            pytest.fail(f"the retrain did not stop within 60 s of {stop.name}:\n{child.communicate()[1]}")
    finally:
        child.kill()  # never leave a stalled child behind, whatever failed above
    assert child.returncode != 0
    models = recsql.list_models(small_trained)
    killed = models[0] if phase != "read" else None
    if killed is None:
        assert len(models) == 1  # killed before its run existed: nothing at all was written
    elif stop == signal.SIGKILL:
        # PostgreSQL frees a killed client's lock once the server reads the closed socket:
        # at once on one host, but not within the same instant.
        deadline = time.monotonic() + 10
        while killed.status != "dead" and time.monotonic() < deadline:
            time.sleep(0.1)
            killed = recsql.list_models(small_trained)[0]
        assert killed.status == "dead"
    else:
        assert killed.status == "failed" and stop.name in killed.error, err
        assert stop.name in err and "Traceback" not in err
    assert _served(small_trained) == before
    result = recsql.train(small_trained, samples=0, features=2)
    assert _active(small_trained) == result.model_id
    if killed is not None:
        after = next(m for m in recsql.list_models(small_trained) if m.model_id == killed.model_id)
        assert after.status in ("failed", "pruned")
        assert sum(recsql.output_counts(small_trained, killed.model_id).values()) == 0

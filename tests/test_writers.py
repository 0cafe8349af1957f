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

RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)


@pytest.fixture
def trained(engine, run, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)
    return engine


def _active(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT model_id FROM active_model")).scalar_one()


def test_a_second_writer_is_refused_or_waits(trained, run):
    with writer_lock(trained):
        out = run("train", "--samples", 0, ok=False).output
        assert "another recsql writer" in out and "--wait" in out
        assert "did not finish within 0.3 s" in run("train", "--samples", 0, "--wait", 0.3, ok=False).output
        assert "another recsql writer" in run("models", "prune", ok=False).output
        assert "another recsql writer" in run("models", "activate", 1, ok=False).output
    assert [m.status for m in recsql.list_models(trained)] == ["active"]  # the refusals wrote nothing
    run("train", "--samples", 0, "--wait", 5)
    assert [m.status for m in recsql.list_models(trained)] == ["active", "retired"]


def test_a_waiting_writer_goes_on_when_the_lock_is_released(trained, run):
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with writer_lock(trained):
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
    assert [m.status for m in recsql.list_models(trained)] == ["active", "retired"]


def test_a_dead_run_is_shown_as_dead_and_reclaimed(trained, run):
    before = _active(trained)
    with trained.begin() as conn:  # what a retrain killed mid-write leaves behind
        dead = conn.execute(Model.__table__.insert().values(
            created_at=datetime.now(UTC), status=RUNNING, algorithm="als", params={},
        ).returning(Model.id)).scalar_one()
        conn.execute(text(f"INSERT INTO movie_features VALUES ({dead}, 1, 0, 0.5), ({dead}, 2, 0, 0.25)"))
    assert recsql.list_models(trained)[0].status == "dead"
    with writer_lock(trained):  # while a writer holds the lock, a running model is alive
        assert recsql.list_models(trained)[0].status == "running"
    assert _active(trained) == before
    run("train", "--samples", 0)
    reclaimed = next(m for m in recsql.list_models(trained) if m.model_id == dead)
    # Marked failed with the reason, then pruned by the retrain's --keep: rows gone, history kept.
    assert reclaimed.status == "pruned" and "process stopped" in reclaimed.error
    assert sum(recsql.output_counts(trained, dead).values()) == 0


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_killed_retrain_leaves_the_previous_model(db_url, trained, stop):
    """A real `recsql train` killed during its fit: the previous model stays active with all
    its rows, the run is never left 'running', and the next retrain succeeds."""
    before = _active(trained)
    with trained.connect() as conn:
        similar_before = conn.execute(text("SELECT COUNT(*) FROM similar_movies")).scalar()
    child = subprocess.Popen(
        [sys.executable, "-m", "recsql", "--quiet", "--database-url", db_url, "train", "--samples", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )
    deadline = time.monotonic() + 60
    while not any(m.status == "running" for m in recsql.list_models(trained)):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # well into the fit
    child.send_signal(stop)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    killed = recsql.list_models(trained)[0]
    if stop == signal.SIGTERM:
        assert killed.status == "failed" and "SIGTERM" in killed.error, err
        assert "SIGTERM" in err and "Traceback" not in err
    else:
        assert killed.status == "dead"
    assert _active(trained) == before
    with trained.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM similar_movies")).scalar() == similar_before
    result = recsql.train(trained, samples=0, features=2)
    assert _active(trained) == result.model_id
    assert next(m for m in recsql.list_models(trained) if m.model_id == killed.model_id).status in ("failed", "pruned")

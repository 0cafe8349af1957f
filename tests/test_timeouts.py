"""Waits that end: with an application holding a lock recsql needs, every command and
every serving call gives up after its timeout with one line naming what was locked and
the setting to change, instead of waiting for as long as the lock is held."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import recsql
from recsql.db.engine import normalize_url
from recsql.db.timeouts import LOCK_TIMEOUT_ENV
from recsql.errors import DatabaseUnavailable
from tests.conftest import SMALL_RATINGS, Cli


@pytest.fixture
def trained(db_url, tmp_path):
    """A trained database of each kind; tests of one kind skip the other."""
    (tmp_path / "r.csv").write_text(SMALL_RATINGS)
    run = Cli(db_url)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    return run


class Held:
    """An application's session holding a lock until the block ends."""

    def __init__(self, url: str, statement: str):
        self.engine = create_engine(normalize_url(url))
        self.conn = self.engine.connect()
        self.conn.execute(text(statement))

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.conn.rollback()
        self.conn.close()
        self.engine.dispose()


def _only(kind: str, url: str) -> None:
    if not url.startswith(kind):
        pytest.skip(f"{kind} only")


def _timed(call) -> tuple[float, object]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def test_commands_give_up_on_a_locked_table(db_url, trained, tmp_path, monkeypatch):
    _only("postgresql", db_url)
    run = trained
    with Held(db_url, "LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE"):
        seconds, result = _timed(lambda: run("--lock-timeout", 0.5, "-v", "train", "--samples", 0, ok=False))
        assert seconds < 10
        assert "public.ratings (AccessExclusive by pid" in result.output and "--lock-timeout" in result.output
        monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.5")  # the environment says the same
        seconds, result = _timed(lambda: run("import", "ratings", tmp_path / "r.csv", ok=False))
        assert seconds < 10 and "waiting 0.5 s" in result.output
    with Held(db_url, "LOCK TABLE models IN ACCESS EXCLUSIVE MODE"):
        seconds, result = _timed(lambda: run("models", "activate", 1, ok=False))
        assert seconds < 10 and "public.models" in result.output
    assert [m.status for m in recsql.list_models(recsql.connect(db_url))] == ["active"]


def test_serving_gives_up_on_a_locked_table(db_url, trained):
    _only("postgresql", db_url)
    app = create_engine(normalize_url(db_url))
    for recommender in (recsql.Recommender(app, timeout=0.5), recsql.Recommender.from_url(db_url, timeout=0.5)):
        with Held(db_url, "LOCK TABLE movie_similarities IN ACCESS EXCLUSIVE MODE"):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable) as caught:
                recommender.similar(3)
            assert time.monotonic() - started < 10
        message = str(caught.value)
        assert "public.movie_similarities" in message and "timeout=" in message and caught.value.http_status == 503
        assert len(recommender.similar(3, limit=2)) == 2  # and serves again once the lock is gone
    app.dispose()


def test_serving_bounds_each_statement(db_url, trained):
    _only("postgresql", db_url)
    """The statement timeout a serving call runs under, on an application's connection
    (set for the call, put back after) and on a Recommender's own engine."""
    app = create_engine(normalize_url(db_url))
    with app.connect() as conn:
        rec = recsql.Recommender(conn, timeout=1.5)
        with rec._connection() as inside:
            assert inside.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    with recsql.Recommender.from_url(db_url, timeout=1.5) as own, own._connection() as inside:
        assert inside.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
    app.dispose()


def test_sqlite_waits_for_a_writer_are_bounded(db_url, trained, tmp_path):
    _only("sqlite", db_url)
    path = make_url(db_url).database
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an application's write transaction
    try:
        seconds, result = _timed(
            lambda: trained("--lock-timeout", 0.5, "import", "ratings", tmp_path / "r.csv", ok=False)
        )
        assert seconds < 10
        assert "locked by another connection's write" in result.output and "--lock-timeout" in result.output
    finally:
        other.rollback()
        other.close()
    assert "imported" in trained("import", "ratings", tmp_path / "r.csv").output


def test_a_lock_released_in_time_is_waited_for(db_url, trained):
    _only("postgresql", db_url)
    """A lock held for less than the timeout costs only the wait."""
    held = Held(db_url, "LOCK TABLE models IN ACCESS EXCLUSIVE MODE")
    threading.Timer(0.5, held.__exit__).start()
    seconds, _ = _timed(lambda: trained("--lock-timeout", 20, "models", "activate", 1))
    assert 0.4 < seconds < 15


def test_the_defaults_the_readme_gives(monkeypatch, sqlite_url):
    from recsql.db.timeouts import resolve_lock_timeout

    monkeypatch.delenv(LOCK_TIMEOUT_ENV, raising=False)
    assert resolve_lock_timeout() == 30
    assert recsql.Recommender(sqlite_url).timeout == 10
    with pytest.raises(recsql.errors.InvalidParameter):
        resolve_lock_timeout("soon")

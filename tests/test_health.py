"""`recsql db status` as an operator's health check: exit codes to alert on, --json for
monitoring, --max-age for a stale model, the last failed retrain; and it changes nothing.
Also: the cron jobs' failure line carries its timestamp when run with `python -m`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, text, update

import recsql
from recsql.cli.outcome import MODEL_TOO_OLD, NO_ACTIVE_MODEL, OK, PROBLEM, SCHEMA_NOT_CURRENT
from recsql.db import migrate
from recsql.db.engine import normalize_url
from recsql.db.tables import FAILED, RUNNING, Model, Rating
from recsql.errors import InvalidParameter
from tests.conftest import ROOT, SMALL_RATINGS, Cli

N_RATINGS = SMALL_RATINGS.count("\n")


def _status(run, *args: object, code: int) -> dict:
    """`recsql db status --json`: its exit code, and the same code in the document."""
    result = run("db", "status", "--json", *args, ok=code == OK)
    assert result.exit_code == code, result.output
    report = json.loads(result.stdout)
    assert report["exit_code"] == code
    assert report["healthy"] is (code == OK) and bool(report["problems"]) is (code != OK)
    assert report["newest"] == migrate.head_revision()
    return report


def _text(run, *args: object, code: int) -> list[str]:
    """`recsql db status` without --json: the same exit code, its lines."""
    result = run("db", "status", *args, ok=code == OK)
    assert result.exit_code == code, result.output
    return result.stdout.splitlines()


def _train(run, tmp_path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)


def _active_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT model_id FROM active_model")).scalar_one()


def test_exit_codes_are_distinct_and_documented():
    codes = [OK, PROBLEM, SCHEMA_NOT_CURRENT, NO_ACTIVE_MODEL, MODEL_TOO_OLD]
    assert (SCHEMA_NOT_CURRENT, NO_ACTIVE_MODEL, MODEL_TOO_OLD) == (4, 5, 6)
    assert len(set(codes)) == len(codes)
    readme = (ROOT / "README.md").read_text()
    bullet = readme.split("- **Health check.**", 1)[1].split("\n- **", 1)[0]
    for code in (0, 4, 5, 6):
        assert f"{code} " in bullet or f"{code}," in bullet


def test_a_fresh_database_is_unhealthy_and_stays_empty(db_url, run):
    report = _status(run, code=SCHEMA_NOT_CURRENT)
    assert report["revision"] is None and report["upgrade_pending"] is True
    assert report["active_model"] is None and report["last_failure"] is None
    assert any("no recsql schema" in p for p in report["problems"])
    lines = _text(run, code=SCHEMA_NOT_CURRENT)
    assert lines[0] == "current: none (no recsql tables)" and lines[-1].startswith("unhealthy: no recsql schema")
    assert recsql.health(db_url).revision is None
    raw = create_engine(normalize_url(db_url))
    try:
        with raw.connect() as conn:
            assert inspect(conn).get_table_names() == [] and inspect(conn).get_view_names() == []
    finally:
        raw.dispose()


def test_an_older_schema_is_unhealthy_whatever_the_model(db_url, run, tmp_path):
    run("db", "upgrade", "--revision", "0008_view_model_ids")
    report = _status(run, code=SCHEMA_NOT_CURRENT)  # no model either: the lowest code wins
    assert report["revision"] == "0008_view_model_ids" and report["upgrade_pending"] is True
    assert any("recsql db upgrade" in p for p in report["problems"])
    run("db", "upgrade")
    _train(run, tmp_path)
    run("db", "downgrade", "0008_view_model_ids")
    report = _status(run, code=SCHEMA_NOT_CURRENT)  # downgrades keep the rows, and the model shows
    assert report["revision"] == "0008_view_model_ids" and report["active_model"]["n_ratings"] == N_RATINGS
    lines = _text(run, "--max-age", 0.000001, code=SCHEMA_NOT_CURRENT)
    assert "run `recsql db upgrade` to migrate" in lines and lines[-1].startswith("unhealthy: ")
    run("db", "upgrade")
    _status(run, code=OK)


def test_no_active_model(db_url, run, tmp_path):
    run("db", "upgrade")
    report = _status(run, "--max-age", 0.000001, code=NO_ACTIVE_MODEL)
    assert report["revision"] == report["newest"] and report["upgrade_pending"] is False
    assert report["active_model"] is None
    assert report["problems"] == ["no active model (run `recsql train`)"]
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)  # ratings are not a model
    lines = _text(run, code=NO_ACTIVE_MODEL)
    assert "active model: none" in lines and lines[-1] == "unhealthy: no active model (run `recsql train`)"


def test_a_trained_database_is_healthy(db_url, run, engine, tmp_path):
    _train(run, tmp_path)
    report = _status(run, "--max-age", 90000, code=OK)
    active = report["active_model"]
    assert active["model_id"] == _active_id(engine)
    with engine.connect() as conn:
        assert active["n_ratings"] == conn.execute(select(func.count()).select_from(Rating)).scalar_one()
        assert (
            active["algorithm"]
            == conn.execute(select(Model.algorithm).where(Model.id == active["model_id"])).scalar_one()
        )
    activated = datetime.fromisoformat(active["activated_at"])
    assert activated.tzinfo is not None and abs(datetime.now(UTC) - activated) < timedelta(minutes=10)
    assert 0 <= active["age_seconds"] < 600
    assert report["problems"] == [] and report["last_failure"] is None and report["upgrade_pending"] is False
    lines = _text(run, code=OK)
    assert lines[0] == "current: " + migrate.head_revision()
    assert re.fullmatch(
        rf"active model: {active['model_id']} \(als\), \d+ seconds? old, {N_RATINGS} ratings", lines[2]
    ), lines
    assert lines[-1] == "healthy"
    # The Python API says the same.
    health = recsql.health(db_url, max_age=90000)
    assert health.healthy and health.problems == ()
    assert health.active_model is not None and health.active_model.model_id == active["model_id"]


def test_a_model_older_than_max_age(db_url, run, engine, tmp_path):
    _train(run, tmp_path)
    report = _status(run, "--max-age", 0.000001, code=MODEL_TOO_OLD)
    assert len(report["problems"]) == 1 and "older than" in report["problems"][0]
    assert _text(run, "--max-age", 0.000001, code=MODEL_TOO_OLD)[-1].startswith("unhealthy: active model")
    # A row without an activation time is as old as its finish.
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    with engine.begin() as conn:
        conn.execute(update(Model).where(Model.status == "active").values(activated_at=None, finished_at=two_days_ago))
    report = _status(run, "--max-age", 86400, code=MODEL_TOO_OLD)
    assert report["active_model"]["activated_at"] is None
    assert 2 * 86400 <= report["active_model"]["age_seconds"] < 2 * 86400 + 600
    assert ", 2.0 days old, " in _text(run, code=OK)[2]
    assert run("db", "status", "--max-age", -1, ok=False).exit_code == 2
    with pytest.raises(InvalidParameter):
        recsql.health(db_url, max_age=float("nan"))


def test_the_last_failed_run_is_shown(db_url, run, engine, tmp_path):
    _train(run, tmp_path)
    with engine.begin() as conn:  # what a retrain killed mid-write leaves behind
        conn.execute(
            Model.__table__.insert().values(
                created_at=datetime.now(UTC) - timedelta(seconds=1), status=RUNNING, algorithm="als", params={}
            )
        )
    run("train", "--features", 2, "--samples", 0)  # reclaims it (failed), then prunes it
    report = _status(run, code=OK)  # a failure alone is reported, not alerted on
    failure = report["last_failure"]
    with engine.connect() as conn:
        status = conn.execute(select(Model.status).where(Model.id == failure["model_id"])).scalar_one()
    assert status == "pruned" and "process stopped" in failure["error"]
    assert failure["after_active"] is False and failure["finished_at"] is not None
    with engine.begin() as conn:
        conn.execute(
            Model.__table__.insert().values(
                created_at=datetime.now(UTC),
                finished_at=datetime.now(UTC),
                status=FAILED,
                algorithm="als",
                params={},
                error="the fit diverged: NaN in the factors",
            )
        )
    failure = _status(run, code=OK)["last_failure"]
    assert failure["error"] == "the fit diverged: NaN in the factors" and failure["after_active"] is True
    lines = _text(run, code=OK)
    assert any(
        line.startswith(f"last failure: model {failure['model_id']}")
        and "after the active model" in line
        and line.endswith("the fit diverged: NaN in the factors")
        for line in lines
    ), lines


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path):
    result = Cli(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")("db", "status", "--json", ok=False)
    assert result.exit_code == PROBLEM and "cannot connect" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("job", ["retrain", "migrate"])
def test_a_cron_failure_line_has_its_timestamp(job, tmp_path):
    url = "sqlite:////nonexistent/dir/x.db"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RECSQL_SCHEMA")}
    env["RECSQL_DATABASE_URL"] = url
    args = ["--database-url", url] if job == "migrate" else []
    done = subprocess.run(
        [sys.executable, "-m", "recsql.cron", job, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == PROBLEM, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} ERROR recsql\.cron: {job} failed: ", last), last

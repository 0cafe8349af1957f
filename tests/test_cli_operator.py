"""What an operator meets: options anywhere, the database named, logs with timestamps,
exit codes that mean the same everywhere, and the cron jobs from an installed package."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

import recsql
from recsql.cli import cli
from recsql.cli.outcome import BUG, CLOSED, PROBLEM, USAGE
from recsql.db import migrate
from recsql.db.engine import FALLBACK_URL_ENV, URL_ENV

RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture
def trained(db_url, run, tmp_path):
    (tmp_path / "r.csv").write_text(RATINGS)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    return db_url


def _invoke(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def test_global_options_may_come_after_the_subcommand(trained):
    quiet = _invoke("similar", 3, "--database-url", trained, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == _invoke("--database-url", trained, "-q", "similar", 3).output
    assert _invoke("db", "status", f"--database-url={trained}").exit_code == 0


def test_the_database_comes_from_the_environment_or_is_named(trained, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    unset = {URL_ENV: None, FALLBACK_URL_ENV: None}
    assert "active" in _invoke("models", env={**unset, FALLBACK_URL_ENV: trained}).output
    # RECSQL_DATABASE_URL wins over DATABASE_URL.
    assert _invoke("models", env={URL_ENV: trained, FALLBACK_URL_ENV: "postgresql://x@127.0.0.1:1/no"}).exit_code == 0
    fallback = _invoke("models", env=unset)
    assert fallback.exit_code == 0
    assert "recsql: using sqlite:///recsql.db (set --database-url" in fallback.stderr
    assert (elsewhere / "recsql.db").exists()
    assert "using" not in _invoke("-q", "models", env=unset).stderr


def test_verbose_logs_each_step_with_a_timestamp_and_quiet_keeps_the_model_id(db_url, tmp_path):
    (tmp_path / "r.csv").write_text(RATINGS)
    assert _invoke("--database-url", db_url, "import", "ratings", tmp_path / "r.csv").exit_code == 0
    verbose = _invoke("--database-url", db_url, "-v", "train", "--features", 2, "--samples", 0)
    assert re.search(STAMP + r" INFO recsql.train: model 1: training als on 64 ratings", verbose.stderr)
    assert re.search(STAMP + r" INFO recsql.progress: fit: ", verbose.stderr)
    assert re.search(STAMP + r" INFO recsql.train: model 1 is active", verbose.stderr)
    quiet = _invoke("--database-url", db_url, "-q", "train", "--features", 2, "--samples", 0)
    assert quiet.stdout.startswith("model 2 (als) is active") and quiet.stderr == ""


def test_exit_codes_mean_the_same_in_the_cli_and_the_cron_jobs(trained, monkeypatch):
    assert _invoke("--database-url", trained, "similar", 999).exit_code == PROBLEM
    assert _invoke("--database-url", trained, "train", "--features", "many").exit_code == USAGE

    def broken(*_args, **_kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(recsql, "list_models", broken)
    bug = _invoke("--database-url", trained, "models")
    assert bug.exit_code == BUG and "unexpected TypeError: a bug" in bug.stderr
    assert "Traceback" not in bug.output and "run with -v" in bug.stderr
    assert "Traceback" in _invoke("--database-url", trained, "-v", "models").stderr


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_engine_is_a_hidden_old_name_of_backend(command):
    """`--engine`, the old name of `--backend` (an "engine" is also SQLAlchemy's), still
    parses as `--backend`; the help shows only `--backend`.  Parsing only: no database, no Spark."""
    chosen = cli.commands[command]
    for flag in ("--engine", "--backend"):
        for backend in ("local", "spark"):
            assert chosen.make_context(command, [flag, backend]).params["backend"] == backend
    shown = _invoke(command, "--engine", "local", "--help")
    assert shown.exit_code == 0 and "--backend [local|spark]" in shown.output and "--engine" not in shown.output
    refused = _invoke(command, "--engine", "cloud")
    assert refused.exit_code == USAGE and "'--backend'" in refused.output


def test_the_cron_jobs_run_from_the_installed_package(trained):
    def job(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "recsql.cron", *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", URL_ENV: trained},
        )

    assert job("migrate").returncode == 0
    done = job("retrain", "--features", "2", "--samples", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_id"] == 2
    assert job("retrain", "--no-such-flag").returncode == USAGE
    assert job("nothing").returncode == USAGE
    verbose = job("retrain", "-v", "--samples", "0")
    assert re.search(STAMP + r" INFO recsql.train: model 3 is active", verbose.stderr)


def test_models_shows_the_features_it_stored(db_url, run, tmp_path):
    (tmp_path / "r.csv").write_text(RATINGS)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 4)  # the Bayesian model stores its compressed average
    model = recsql.list_models(recsql.connect(db_url))[0]
    assert model.stored_features == 8 and model.params["features"] == 2
    header, row = run("models").output.splitlines()[:2]
    assert "stored k" in header and re.search(r"\b2\s+8\b", row)


def _hinted(output: str) -> list[str]:
    """The command a message tells the operator to run, as they would type it."""
    found = re.findall(r"`(recsql [^`]+)`", output)
    assert found, output
    return shlex.split(found[0])[1:]


def test_every_hint_is_a_command_that_works(db_url, run, tmp_path):
    """Follow each hint as printed (FILE filled in) and the situation is fixed."""
    (tmp_path / "r.csv").write_text(RATINGS)
    hint = _hinted(run("train", "--samples", 0, ok=False).output)  # no ratings yet
    run(*[str(tmp_path / "r.csv") if a == "FILE" else a for a in hint])
    hint = _hinted(run("similar", 3, ok=False).output)  # no model yet
    run(*hint)
    assert run("similar", 3).output
    hint = _hinted(run("models", "activate", 99, ok=False).output)  # unknown model
    assert "active" in run(*hint).output
    run("db", "downgrade", "0008_view_model_ids")
    hint = _hinted(run("db", "status", ok=False).output)  # behind its migrations (exit 4)
    run(*hint)
    assert "current: " + migrate.head_revision() in run("db", "status").output


def test_a_reader_that_stops_early_ends_the_command_quietly(trained):
    """`recsql models | head`: the pipe is closed before recsql writes; no traceback, no
    'unexpected error', and the exit code other tools give (141 = 128 + SIGPIPE)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "recsql", "--database-url", trained, "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    error = child.stderr.read().decode()
    assert child.wait(timeout=60) == CLOSED == 141
    assert error == ""

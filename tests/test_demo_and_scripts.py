"""`recsql demo` and the cron scripts, run as a user runs them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

import recsql
from recsql.cli import cli
from recsql.data.synthetic import demo_catalogue
from recsql.db import migrate
from tests.conftest import ROOT


def test_synthetic_catalogue_is_reproducible():
    a, b = demo_catalogue(), demo_catalogue()
    assert a.ratings.equals(b.ratings) and a.movies.equals(b.movies)
    assert not a.ratings.duplicated(["user_id", "movie_id"]).any()
    assert set(a.ratings.value.unique()) <= {1, 2, 3, 4, 5}


def test_demo_runs_in_its_own_file_and_finds_same_genre(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECSQL_DATABASE_URL", raising=False)
    for _ in range(2):  # a second run starts afresh
        result = CliRunner().invoke(cli, ["demo"])
        assert result.exit_code == 0, result.output
    assert "Movie title: The Sheriff of Dry Creek" in result.output
    engine = recsql.connect(f"sqlite:///{tmp_path / 'recsql-demo.db'}")
    similar = recsql.Recommender(engine).similar(1, limit=5)
    assert len(recsql.list_models(engine)) == 1
    assert sum(m.genres == "western" for m in similar) >= 4
    engine.dispose()


def test_demo_refuses_a_database_with_ratings(db_url, run, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,movie_id,value\n1,1,5\n")
    run("import", "ratings", path)
    assert "only runs on an empty database" in run("demo", ok=False).output


def _script(name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECSQL_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args], env=env, capture_output=True, text=True
    )


def test_cron_scripts(db_url, tmp_path):
    migrated = _script("migrate.py", db_url)
    assert migrated.returncode == 0 and migrated.stdout.strip() == migrate.head_revision()
    failed = _script("retrain.py", db_url)
    assert failed.returncode == 1
    assert re.fullmatch(  # one line, with a timestamp and a level
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR recsql.cron: retrain failed: there are no ratings to "
        r"train on in recsql's ratings table; import some with `recsql import ratings FILE`",
        failed.stderr.strip(),
    ), failed.stderr
    path = tmp_path / "r.csv"
    lines = [f"{u},{m},{(u + m) % 5 + 1}" for u in range(6) for m in range(5)]
    path.write_text("user_id,movie_id,value\n" + "\n".join(lines))
    engine = recsql.connect(db_url)
    recsql.import_ratings(engine, path)
    done = _script("retrain.py", db_url, "--features", "2")
    assert done.returncode == 0, done.stderr
    newest = recsql.list_models(engine)[0]
    assert newest.status == "active" and newest.params["features"] == 2
    printed = json.loads(done.stdout)
    assert printed["model_id"] == newest.model_id and printed["n_ratings"] == 30
    assert printed["metrics"]["train_rmse"] == pytest.approx(newest.metrics["train_rmse"])
    bad_flag = _script("retrain.py", db_url, "--features", "many")
    assert bad_flag.returncode == 2 and "retrain failed: " in bad_flag.stderr  # a usage error
    assert len(bad_flag.stderr.strip().splitlines()) == 1
    unreachable = _script("migrate.py", "postgresql://x@127.0.0.1:1/none")
    assert unreachable.returncode == 1 and len(unreachable.stderr.strip().splitlines()) == 1
    engine.dispose()


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.py")))
def test_every_script_imports(script, monkeypatch):
    """Benchmarks are run rarely; a rename in the package must not leave one broken
    until then (bench_cores.py imported a name bench_scale.py had dropped)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # as `python scripts/NAME.py` sees it
    spec = importlib.util.spec_from_file_location(f"script_{script[:-3]}", ROOT / "scripts" / script)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # imports only: main() waits for __main__

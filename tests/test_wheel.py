"""A plain, non-editable install works: migrations ship inside the wheel, and psycopg is
an extra (``recsql[postgres]``) that SQLite does without."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_installs_and_runs_demo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("recsql-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "recsql/migrations/env.py" in names and "recsql/py.typed" in names
    assert "recsql/spark/log4j2.properties" in names  # Spark's JVM logging, read from the package
    assert any(n.startswith("recsql/migrations/versions/0001_") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.*)$", metadata, flags=re.M)
    # psycopg only with an extra: `postgres`, and `test` (hatchling spells out its recsql[postgres]).
    driver_extras = {
        extra
        for r in requires
        if r.startswith("psycopg")
        for extra in re.findall(r"extra == ['\"](\w+)['\"]", r) or ["(none)"]
    }
    assert driver_extras == {"postgres", "test"}, requires

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "work"  # away from the checkout, so nothing resolves to it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RECSQL_DATABASE_URL"}
    recsql_bin = env_dir / "bin" / "recsql"
    upgrade = subprocess.run(
        [recsql_bin, "--database-url", "sqlite:///fresh.db", "db", "upgrade"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    demo = subprocess.run([recsql_bin, "demo"], cwd=work, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert "The 5 most similar movies are:" in demo.stdout
    where = subprocess.run(
        [python, "-c", "import recsql.db.migrate as m; print(m.migrations_dir())"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in where.stdout
    # A plain install has no psycopg; the demo above ran without it, and a PostgreSQL
    # URL says which extra to install.
    absent = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('psycopg'))"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert absent.stdout.strip() == "None"
    postgres = subprocess.run(
        [recsql_bin, "--database-url", "postgresql://app@127.0.0.1:1/shop", "db", "status"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert postgres.returncode == 1 and NEEDS_PSYCOPG in postgres.stderr, postgres.stderr
    assert "Traceback" not in postgres.stderr


NEEDS_PSYCOPG = "PostgreSQL needs psycopg: pip install 'recsql[postgres]'"
PG_URL = "postgresql://app@127.0.0.1:1/shop"

API_WITHOUT_PSYCOPG = """
import sys
import recsql

assert "psycopg" in sys.modules and sys.modules["psycopg"] is None, "psycopg is not blocked"
engine = recsql.connect(sys.argv[1])
recsql.generate(engine, ratings=3000, users=100, movies=60)
recsql.train(engine, samples=0)
rec = recsql.Recommender(engine)
movie = rec.popular(1)[0].movie_id
print("similar", len(rec.similar(movie, limit=3)), "recommend", len(rec.recommend(1, limit=3)))
engine.dispose()
try:
    recsql.connect(sys.argv[2])
except recsql.RecsqlError as exc:
    print("error", exc)
"""


def test_sqlite_works_without_psycopg(tmp_path):
    """psycopg unimportable (as after `pip install recsql`): the API and `python -m recsql`
    import, train and serve on SQLite, and a PostgreSQL URL is one clear error."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\n\nsys.modules['psycopg'] = None  # import psycopg fails\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RECSQL_DATABASE_URL", "DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(ROOT)])

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    api = python("-c", API_WITHOUT_PSYCOPG, f"sqlite:///{tmp_path / 'api.db'}", PG_URL)
    assert api.returncode == 0, api.stderr
    assert "similar 3 recommend 3" in api.stdout
    assert f"error {NEEDS_PSYCOPG}" in api.stdout

    def cli(*args: str) -> subprocess.CompletedProcess:
        return python("-m", "recsql", "--database-url", f"sqlite:///{tmp_path / 'cli.db'}", *args)

    for args in (["generate", "--ratings", "3000", "--users", "100", "--movies", "60"], ["train", "--samples", "0"]):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
    popular = cli("popular", "--limit", "1", "--json")
    assert popular.returncode == 0, popular.stderr
    similar = cli("similar", str(json.loads(popular.stdout)[0]["movie_id"]), "--limit", "3")
    assert similar.returncode == 0 and similar.stdout.strip(), similar.stderr

    postgres = python("-m", "recsql", "--database-url", PG_URL, "db", "status")
    assert postgres.returncode == 1, postgres.stderr
    assert NEEDS_PSYCOPG in postgres.stderr and "Traceback" not in postgres.stderr, postgres.stderr

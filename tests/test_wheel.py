"""A plain, non-editable install works: migrations ship inside the wheel."""

from __future__ import annotations

import os
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
        check=True, capture_output=True,
    )
    (wheel,) = dist.glob("recsql-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "recsql/migrations/env.py" in names and "recsql/py.typed" in names
    assert any(n.startswith("recsql/migrations/versions/0001_") for n in names)

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
        cwd=work, env=env, capture_output=True, text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    demo = subprocess.run([recsql_bin, "demo"], cwd=work, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert "The 5 most similar movies are:" in demo.stdout
    where = subprocess.run(
        [python, "-c", "import recsql.db.migrate as m; print(m.migrations_dir())"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )
    assert str(env_dir) in where.stdout

"""Fixtures: a fresh database per test on SQLite and on PostgreSQL, the shared data sets,
and a CLI runner.

PostgreSQL: each test gets its own database (``recsql_test_<random>``) on the server at
``$RECSQL_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
dropped afterwards.  If the server does not answer, PostgreSQL tests skip, except when
``CI`` is set: then they fail, so a broken server can never pass as green.

Shared data (``../shared/data``, or ``$RECSQL_SHARED_DATA``) is read in place, never
copied; tests that need it skip when it is absent, except under CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from recsql.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSQL_SHARED_DATA", ROOT.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("RECSQL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = bool(os.environ.get("CI"))


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "seed").is_dir() or not (SHARED_DATA / "ml-100k").is_dir():
        _missing(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def seed_data(shared_data: Path) -> Path:
    return shared_data / "seed"


@pytest.fixture(scope="session")
def ml100k(shared_data: Path) -> Path:
    return shared_data / "ml-100k"


def _sqlalchemy_url(libpq_url: str, dbname: str) -> str:
    base = libpq_url.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + dbname


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"recsql_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _sqlalchemy_url(PG_ADMIN_URL, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    with _postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'recsql.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per test module and dialect, for fixtures that are costly to build
    (a trained model) and shared by the module's tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module') / 'recsql.db'}"
    else:
        with _postgres_database() as url:
            yield url


@pytest.fixture
def engine(db_url: str):
    import recsql

    engine = recsql.connect(db_url)
    yield engine
    engine.dispose()


class Cli:
    """Runs `recsql --database-url URL ...` in-process, as a user would type it."""

    def __init__(self, url: str):
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, ["--database-url", self.url, *map(str, args)])
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"recsql {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
                + (f"\n{result.exc_info}" if result.exception else "")
            )
        if not ok:
            assert result.exit_code != 0, f"expected failure, got:\n{result.output}"
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                f"expected a clean error, got a traceback: {result.exc_info}"
            )
        return result


@pytest.fixture
def run(db_url: str) -> Cli:
    return Cli(db_url)


SMALL_RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)


@pytest.fixture
def small_trained(engine, run: Cli, tmp_path: Path):
    """The engine of a database (each kind) holding SMALL_RATINGS and one trained model."""
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)
    return engine

"""The schema comes from Alembic only, matches the models, and is versioned safely."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import recsql
from recsql.cli import cli
from recsql.db import migrate
from recsql.db.catalogue import stored_scale
from recsql.db.engine import normalize_url
from recsql.db.tables import RECSQL_TABLES, RECSQL_VIEWS, Base
from recsql.errors import SchemaError, SchemaOutOfDate
from tests.conftest import ROOT
from tests.helpers import readme_sql


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []


def test_first_use_creates_schema_at_head(engine):
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        inspector = inspect(conn)
        assert set(RECSQL_TABLES) <= set(inspector.get_table_names())
        assert set(RECSQL_VIEWS) <= set(inspector.get_view_names())


def test_downgrade_base_removes_only_recsql(db_url, run):
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE app_orders (id INTEGER PRIMARY KEY, total FLOAT)"))
        conn.execute(text("INSERT INTO app_orders VALUES (1, 9.5)"))
    run("db", "upgrade")
    run("db", "downgrade", "base")
    with raw.connect() as conn:
        inspector = inspect(conn)
        assert inspector.get_table_names() == ["app_orders"]
        assert inspector.get_view_names() == []
        assert conn.execute(text("SELECT total FROM app_orders")).scalar() == 9.5
    raw.dispose()


def test_outdated_schema_is_refused_with_the_fix(db_url, run):
    older = migrate.all_revisions()[-2]
    run("db", "upgrade", "--revision", older)
    result = run("models", ok=False)
    assert older in result.output
    assert "Traceback" not in result.output
    with pytest.raises(SchemaOutOfDate):
        recsql.connect(db_url)
    # The printed fix is a command that works as printed.
    fix = shlex.split(re.search(r"recsql --database-url '[^']*' db upgrade", result.output).group(0))
    assert fix[2] == make_url(normalize_url(db_url)).render_as_string(hide_password=True)
    assert CliRunner().invoke(cli, fix[1:]).exit_code == 0
    assert "no training runs yet" in run("models").output
    assert "current: " + migrate.head_revision() in run("db", "status", ok=False).output  # exit 5: no model


def test_foreign_tables_with_our_names_are_left_alone(db_url):
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE ratings (customer INTEGER, stars INTEGER)"))
    with pytest.raises(SchemaError, match="ratings"):
        recsql.connect(db_url)
    with raw.connect() as conn:
        assert inspect(conn).get_table_names() == ["ratings"]
    raw.dispose()


def test_alembic_command_line_with_shipped_ini(db_url):
    env = {**os.environ, "RECSQL_DATABASE_URL": db_url}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    engine = recsql.connect(db_url)  # accepted as current: no error
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    engine.dispose()


def test_unreachable_database_is_one_clear_line():
    from tests.conftest import Cli

    result = Cli("postgresql://nobody@127.0.0.1:1/nothing")("models", ok=False)
    assert result.output.startswith("Error: cannot connect to postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    assert len(result.output.strip().splitlines()) == 1
    result = Cli("sqlite:////no/such/folder/x.db")("models", ok=False)
    assert "cannot connect" in result.output


def test_upgrade_keeps_runs_made_at_an_older_revision(db_url, run):
    """A database trained at 0002 (before biases) upgrades and keeps serving its model."""
    run("db", "upgrade", "--revision", "0002_views")
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (id, created_at, status, algorithm, params) "
                "VALUES (1, CURRENT_TIMESTAMP, 'active', 'cg', '{\"features\": 2}')"
            )
        )
        conn.execute(text("INSERT INTO movies VALUES (3, 'Three', NULL), (4, 'Four', 'drama')"))
        for table, rows in (
            ("user_features", [(1, 0, 2.0), (1, 1, 0.5)]),
            ("movie_features", [(3, 0, 1.5), (3, 1, -1.0), (4, 0, 1.0), (4, 1, 1.0)]),
        ):
            for ident, feature, value in rows:
                conn.execute(text(f"INSERT INTO {table} VALUES (1, {ident}, {feature}, {value})"))
        conn.execute(text("INSERT INTO movie_similarities VALUES (1, 3, 1, 4, 2.5), (1, 4, 1, 3, 2.5)"))
    run("db", "upgrade")
    assert "Four" in run("similar", 3).output
    with raw.connect() as conn:
        predicted = conn.execute(text(readme_sql()["the predicted rating of user 1 for movie 3"])).scalar()
    assert predicted == pytest.approx(2.0 * 1.5 + 0.5 * -1.0)
    engine = recsql.connect(db_url)
    assert [m.status for m in recsql.list_models(engine)] == ["active"]
    engine.dispose()
    raw.dispose()


def test_upgrade_scores_lists_stored_before_scores(db_url, run):
    """Recommendations stored at 0005 were ordered by predicted rating: after the upgrade
    that is their score, and the view shows it."""
    run("db", "upgrade", "--revision", "0005_popular")
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (id, created_at, status, algorithm, params) "
                "VALUES (1, CURRENT_TIMESTAMP, 'active', 'als', '{\"features\": 2}')"
            )
        )
        conn.execute(text("INSERT INTO user_recommendations VALUES (1, 7, 1, 3, 4.5), (1, 7, 2, 4, 4.25)"))
    run("db", "upgrade")
    with raw.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT rank, movie_id, predicted_rating, score FROM recommended_movies WHERE user_id = 7 ORDER BY rank"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, 3, 4.5, 4.5), (2, 4, 4.25, 4.25)]
    run("db", "downgrade", "0005_popular")  # keeps every row: no --yes needed
    with raw.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM recommended_movies")).scalar() == 2
    raw.dispose()


def test_setup_is_all_or_nothing(db_url):
    """An application view with one of recsql's names makes the first-use setup fail:
    one clear error, and not a single recsql table (or version) is left behind."""
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE app_items (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE VIEW similar_movies AS SELECT id FROM app_items"))
    with pytest.raises(SchemaError, match="nothing was created"):
        recsql.connect(db_url)
    with raw.connect() as conn:
        inspector = inspect(conn)
        assert inspector.get_table_names() == ["app_items"]
        assert inspector.get_view_names() == ["similar_movies"]
    raw.dispose()


def test_two_commands_on_a_new_database_set_it_up_once(db_url):
    """First use from two processes at once: both succeed, the schema is made once."""
    env = {**os.environ, "RECSQL_DATABASE_URL": db_url}
    command = [sys.executable, "-m", "recsql", "models"]
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "no training runs yet" in out
    engine = recsql.connect(db_url)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    engine.dispose()


def test_downgrade_with_data_needs_yes(db_url, run, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,movie_id,value\n1,2,5\n")
    run("import", "ratings", path)
    out = run("db", "downgrade", "base", ok=False).output
    assert "ratings hold rows" in out and "--yes" in out
    assert "current: " + migrate.head_revision() in run("db", "status", ok=False).output  # nothing dropped
    run("db", "downgrade", "base", "--yes")
    assert "none (no recsql tables)" in run("db", "status", ok=False).output


def _served(engine) -> dict[str, list[tuple]]:
    """Every view row and the active model's features, as an application would read them."""
    active = "WHERE model_id = (SELECT model_id FROM active_model)"
    queries = [f"SELECT * FROM {view}" for view in RECSQL_VIEWS]
    queries += [f"SELECT * FROM {table} {active}" for table in ("user_features", "movie_features")]
    with engine.connect() as conn:
        return {q: sorted(map(tuple, conn.execute(text(q)))) for q in queries}


def _predictions(url: str) -> list[float]:
    with recsql.Recommender.from_url(url) as recommender:
        return [recommender.predict(user, movie) for user in (1, 5, 12) for movie in (1, 4, 8)]


@pytest.mark.parametrize("revision", migrate.all_revisions()[:-1])
def test_every_downgrade_round_trips_with_models_stored(db_url, run, tmp_path, revision):
    """Down to each older revision and up again with two models stored: every view and
    prediction is as before; the older version's views still serve meanwhile; rows of a
    model pruned while downgraded are deleted on the way up."""
    path = tmp_path / "r.csv"
    path.write_text(
        "user_id,movie_id,value\n"
        + "\n".join(f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3)
    )
    run("import", "ratings", path, "--rating-scale", "0.5,5")
    run("train", "--features", 2, "--samples", 0)
    run("train", "--features", 3, "--samples", 0)
    engine = recsql.connect(db_url)
    old, active = (m.model_id for m in reversed(recsql.list_models(engine)))
    before, predicted = _served(engine), _predictions(db_url)
    engine.dispose()
    run("db", "downgrade", revision)
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        if revision >= "0002":
            assert conn.execute(text("SELECT COUNT(*) FROM similar_movies")).scalar() > 0
        # What the older version's prune would do: forget model `old` in the tables it knows.
        conn.execute(text(f"UPDATE models SET status = 'failed' WHERE id = {old}"))
        for table in ("user_features", "movie_features", "movie_similarities"):
            conn.execute(text(f"DELETE FROM {table} WHERE model_id = {old}"))
    raw.dispose()
    run("db", "upgrade")
    engine = recsql.connect(db_url)
    assert _served(engine) == before
    assert _predictions(db_url) == predicted
    assert sum(recsql.output_counts(engine, old).values()) == 0
    with engine.connect() as conn:
        assert stored_scale(conn) == (0.5, 5)
        assert conn.execute(text("SELECT model_id FROM active_model")).scalar() == active
    engine.dispose()


def test_upgrade_takes_the_rating_scale_from_stored_ratings(db_url, run):
    """A database with ratings but no scale (before 0007) gets the range they span."""
    run("db", "upgrade", "--revision", "0006_list_scores")
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO ratings (user_id, movie_id, value) VALUES (1, 2, 0.5), (1, 3, 10)"))
    run("db", "upgrade")
    with raw.connect() as conn:
        assert stored_scale(conn) == (0.5, 10)
    raw.dispose()


def test_kept_tables_signatures_are_the_models_columns():
    from recsql.db.evolve import KEPT_TABLES

    for table, columns in KEPT_TABLES.items():
        assert columns <= set(Base.metadata.tables[table].columns.keys()), table


def test_an_applications_events_table_is_never_adopted_nor_dropped(db_url, run):
    """A database made at 0010 whose application then made its own ``events``: the
    upgrade refuses with the fix and changes nothing; a downgrade to base leaves it."""
    run("db", "upgrade", "--revision", "0010_writer_lock")
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT)"))
        conn.execute(text("INSERT INTO events VALUES (1, 'signup', '2026-12-01')"))
    out = run("db", "upgrade", ok=False).output
    assert "table events that is not recsql's" in out and "--schema recsql" in out
    with raw.connect() as conn:
        assert migrate.current_revision(conn) == "0010_writer_lock"
        assert "model_splits" not in inspect(conn).get_table_names()
    run("db", "downgrade", "base", "--yes")
    with raw.connect() as conn:
        assert inspect(conn).get_table_names() == ["events"]
        assert conn.execute(text("SELECT name FROM events")).scalar() == "signup"
    raw.dispose()

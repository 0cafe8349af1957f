"""recsql in a namespace of its own: the application's tables with the same short names
live beside it untouched, and every command, view and README query works in it."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import recsql
import recsql.errors
from recsql.db.engine import SCHEMA_ENV, normalize_url
from recsql.db.lock import ADVISORY_KEY, advisory_key, writer_lock
from tests.conftest import Cli
from tests.helpers import readme_sql

RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)
# The application's own tables, named like recsql's, with other columns.
APP_TABLES = [
    "CREATE TABLE ratings (customer INTEGER, item INTEGER, stars INTEGER)",
    "CREATE TABLE movies (sku TEXT)",
    "INSERT INTO movies VALUES ('not a recsql movie')",
] + [f"INSERT INTO ratings VALUES ({u}, {m}, {(u + m) % 5 + 1})" for u in range(1, 11) for m in range(1, 7)]
SOURCE = """
[ratings]
table = "{table}"
user = "customer"
movie = "item"
rating = "stars"
"""


def _app_rows(conn) -> list[tuple]:
    return sorted(map(tuple, conn.execute(text("SELECT * FROM ratings")))) + [
        tuple(r) for r in conn.execute(text("SELECT * FROM movies"))]


def test_postgresql_schema(postgresql_url, tmp_path):
    app = create_engine(normalize_url(postgresql_url))
    with app.begin() as conn:
        for sql in APP_TABLES:
            conn.execute(text(sql))
        before = _app_rows(conn)
    (tmp_path / "r.csv").write_text(RATINGS)
    run = Cli(postgresql_url)
    run("--schema", "recsql", "import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0, "--schema", "recsql")
    shown = run("similar", 3, "--schema", "recsql", "--json").output
    assert len(json.loads(shown)) == 5
    with app.connect() as conn:
        assert _app_rows(conn) == before  # the application's same-named tables, untouched
        assert conn.execute(text("SELECT COUNT(*) FROM recsql.similar_movies")).scalar() > 0
        assert conn.execute(text("SELECT COUNT(*) FROM recsql.recsql_alembic_version")).scalar() == 1
        conn.execute(text("SET search_path TO recsql, public"))  # as the README says
        for title, sql in readme_sql().items():
            if "_key" not in sql:  # the text-id query needs a text catalogue (tests/test_keys.py)
                assert conn.execute(text(sql)).first() is not None, title
    # Training from the application's own `ratings`, qualified because recsql's is first.
    (tmp_path / "source.toml").write_text(SOURCE.format(table="public.ratings"))
    run("--schema", "recsql", "train", "--source", tmp_path / "source.toml", "--samples", 0, "--features", 2)
    with recsql.Recommender.from_url(postgresql_url, schema="recsql") as rec:
        assert rec.load() == 2 and len(rec.similar(3, limit=3)) == 3
    engine = recsql.connect(postgresql_url, schema="recsql")
    assert recsql.list_models(engine)[0].n_ratings == 60  # the application's 60, not recsql's 64
    engine.dispose()
    # A second namespace in the same database is independent of the first.
    assert "no training runs yet" in run("--schema", "other", "models").output
    app.dispose()


def test_sqlite_file_beside_the_application(sqlite_url, tmp_path, monkeypatch):
    path = make_url(sqlite_url).database
    app = sqlite3.connect(path)
    for sql in APP_TABLES:
        app.execute(sql)
    app.commit()
    app.close()
    (tmp_path / "r.csv").write_text(RATINGS)
    monkeypatch.setenv(SCHEMA_ENV, "recsql")  # the environment works like --schema
    run = Cli(sqlite_url)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    own = tmp_path / "recsql.recsql.db"
    assert own.exists()
    app = create_engine(sqlite_url)
    with app.connect() as conn:
        assert len(conn.execute(text("SELECT * FROM ratings")).all()) == 60  # the application's, untouched
        conn.execute(text(f"ATTACH DATABASE '{own}' AS recsql"))  # as the README says
        assert conn.execute(text("SELECT COUNT(*) FROM recsql.similar_movies")).scalar() > 0
        for title, sql in readme_sql().items():
            if "_key" in sql:
                continue  # the text-id query needs a text catalogue (tests/test_keys.py)
            named = sql
            for view in ("similar_movies", "recommended_movies", "active_model", "popular_movies",
                         "movie_features", "user_features", "movie_biases", "user_biases"):
                named = named.replace(f" {view}", f" recsql.{view}")
            assert conn.execute(text(named)).first() is not None, title
    app.dispose()
    # The application's own `ratings` as a source: attached as `app`.
    (tmp_path / "source.toml").write_text(SOURCE.format(table="app.ratings"))
    run("train", "--source", tmp_path / "source.toml", "--samples", 0, "--features", 2)
    with recsql.Recommender.from_url(sqlite_url) as rec:
        assert rec.load() == 2
    engine = recsql.connect(sqlite_url)
    assert recsql.list_models(engine)[0].n_ratings == 60  # the application's 60, not recsql's 64
    engine.dispose()


def test_a_schema_is_a_plain_name(db_url):
    with pytest.raises(recsql.RecsqlError, match="plain name"):
        recsql.connect(db_url, schema="x; DROP TABLE ratings")


def test_namespaces_have_writer_locks_of_their_own(postgresql_url, tmp_path):
    """A retrain in one schema does not wait for a writer in another (nor in the default)."""
    (tmp_path / "r.csv").write_text(RATINGS)
    one, two = (recsql.connect(postgresql_url, schema=name) for name in ("one", "two"))
    for engine in (one, two):
        recsql.import_ratings(engine, tmp_path / "r.csv")
    with writer_lock(one):
        assert recsql.train(two, samples=0, features=2).model_id == 1
        with pytest.raises(recsql.errors.Busy):
            recsql.train(one, samples=0, features=2)
    assert advisory_key(one) != advisory_key(two)
    assert advisory_key(recsql.connect(postgresql_url)) == ADVISORY_KEY  # unchanged without a schema
    one.dispose()
    two.dispose()

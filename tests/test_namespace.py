"""recsql in a namespace of its own: the application's tables with the same short names
live beside it untouched, and every command, view and README query works in it."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import recsql
import recsql.errors
from recsql.db.engine import SCHEMA_ENV, normalize_url
from recsql.db.lock import ADVISORY_KEY, advisory_key, writer_lock
from recsql.db.migrate import head_revision
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
        tuple(r) for r in conn.execute(text("SELECT * FROM movies"))
    ]


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
            for view in (
                "similar_movies",
                "recommended_movies",
                "active_model",
                "popular_movies",
                "movie_features",
                "user_features",
                "movie_biases",
                "user_biases",
            ):
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


THOUSAND = "user_id,movie_id,value\n" + "\n".join(f"{i % 50 + 1},{i // 50 + 1},{i % 5 + 1}" for i in range(1000))
TWO = "user_id,movie_id,value\n1,1,5\n2,2,4\n"


def _default_namespace(url: str):
    """An engine on the database's default namespace, as the application sees it."""
    return create_engine(normalize_url(url))


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_schema_never_touches_the_default_namespace(db_url, tmp_path, monkeypatch):
    """recsql already lives in the default namespace with 1,000 ratings and a model;
    every command given a schema acts in that schema alone."""
    (tmp_path / "thousand.csv").write_text(THOUSAND)
    (tmp_path / "two.csv").write_text(TWO)
    run = Cli(db_url)
    run("import", "ratings", tmp_path / "thousand.csv")
    run("train", "--features", 2, "--samples", 0)
    default = _default_namespace(db_url)
    before = {t: _count(default, t) for t in ("ratings", "models", "movie_similarities")}
    assert "imported 2" in run("--schema", "rs", "import", "ratings", tmp_path / "two.csv", "--replace").output
    assert {t: _count(default, t) for t in before} == before  # the 1,000 ratings are still there
    monkeypatch.setenv(SCHEMA_ENV, "rs")
    assert f"revision {head_revision()}" in run("db", "upgrade").output
    health = json.loads(run("db", "status", "--json", ok=False).output)
    assert health["revision"] == health["newest"] and health["active_model"] is None
    (tmp_path / "source.toml").write_text(
        SOURCE.format(table="ratings")
        .replace('"customer"', '"user_id"')
        .replace('"item"', '"movie_id"')
        .replace('"stars"', '"value"')
    )
    run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0)
    monkeypatch.delenv(SCHEMA_ENV)
    namespaced = recsql.connect(db_url, schema="rs")
    assert _count(namespaced, "ratings") == 2
    # The source's unqualified `ratings` is the application's (here: the default namespace's).
    assert recsql.list_models(namespaced)[0].n_ratings == 1000
    assert {t: _count(default, t) for t in before} == before
    namespaced.dispose()
    default.dispose()


def test_grant_reader_grants_in_its_schema_only(postgresql_url, tmp_path):
    role = f"reader_{uuid.uuid4().hex[:8]}"
    admin = _default_namespace(postgresql_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}"'))
    (tmp_path / "r.csv").write_text(RATINGS)
    run = Cli(postgresql_url)
    run("import", "ratings", tmp_path / "r.csv")  # recsql in the default namespace too
    run("--schema", "rs", "import", "ratings", tmp_path / "r.csv")
    run("--schema", "rs", "db", "grant-reader", role)
    with admin.connect() as conn:
        can = conn.execute(
            text(
                "SELECT has_table_privilege(:r, 'rs.similar_movies', 'SELECT'), "
                "has_table_privilege(:r, 'public.similar_movies', 'SELECT')"
            ),
            {"r": role},
        ).one()
    assert tuple(can) == (True, False)
    with admin.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_upgrade_beside_the_applications_tables_says_what_to_do(db_url):
    app = _default_namespace(db_url)
    with app.begin() as conn:
        for sql in APP_TABLES[:2]:
            conn.execute(text(sql))
    out = Cli(db_url)("db", "upgrade", ok=False).output
    assert "tables named like recsql's (movies, ratings)" in out and "--schema recsql" in out
    assert out.count("\n") == 1 and "database error" not in out
    with app.connect() as conn:  # nothing was created
        assert sorted(inspect(conn).get_table_names()) == ["movies", "ratings"]
    app.dispose()


def test_recommender_takes_a_schema_with_any_bind(db_url, tmp_path):
    """Recommender(engine | connection | session, schema=) serves recsql's namespace
    through the application's own engine; on PostgreSQL each call leaves the
    connection's search_path and timeouts as it found them."""
    from sqlalchemy.orm import Session

    (tmp_path / "r.csv").write_text(RATINGS)
    run = Cli(db_url)
    run("--schema", "recsql", "import", "ratings", tmp_path / "r.csv")
    run("--schema", "recsql", "train", "--features", 2, "--samples", 0)
    with recsql.Recommender.from_url(db_url, schema="recsql") as own:
        expected = own.similar(3, limit=3)
    app = _default_namespace(db_url)
    with app.connect() as conn, Session(app) as session:
        for bind in (app, conn, session):
            assert recsql.Recommender(bind, schema="recsql").similar(3, limit=3) == expected
        if app.dialect.name == "postgresql":
            shown = "SELECT current_setting('search_path'), current_setting('statement_timeout')"
            before = conn.execute(text(shown)).one()
            lent = recsql.Recommender(conn, schema="recsql", timeout=2)
            lent.recommend(1, limit=2)
            assert conn.execute(text(shown)).one() == before
            with pytest.raises(recsql.errors.UnknownMovie):  # a call that fails after its query
                lent.similar(99_999)
            assert conn.execute(text(shown)).one() == before
            with pytest.raises(recsql.errors.SchemaError, match="schema='recsql'"):
                recsql.Recommender(app).similar(3)
    app.dispose()

"""Least privilege: a reader role reads recommendations and can do nothing else."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

import recsql
from recsql.db.engine import normalize_url
from recsql.db.lock import ADVISORY_KEY, advisory_key
from tests.conftest import Cli

RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)


@pytest.fixture
def reader(postgresql_url):
    """A login role of its own, dropped with everything granted to it."""
    role = f"recsql_reader_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(postgresql_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    yield role
    with admin.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_a_reader_role_reads_recommendations_and_nothing_else(postgresql_url, reader, tmp_path):
    run = Cli(postgresql_url)
    (tmp_path / "r.csv").write_text(RATINGS)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    assert reader in run("db", "grant-reader", reader).output
    as_reader = make_url(normalize_url(postgresql_url)).set(username=reader).render_as_string(hide_password=False)

    with recsql.Recommender.from_url(as_reader) as recommender:
        assert len(recommender.similar(3, limit=3)) == 3
        assert len(recommender.recommend(1, limit=3)) == 3
        assert recommender.recommend_for_ratings({3: 5, 4: 1}, limit=2)
    assert Cli(as_reader)("similar", 3).output.count("\n") >= 3

    engine = create_engine(as_reader)
    for forbidden in (
        "SELECT * FROM ratings",
        "INSERT INTO movies VALUES (99, 'x', NULL)",
        "DELETE FROM models",
        "DROP VIEW similar_movies",
        "CREATE TABLE mine (id INTEGER)",
        "SELECT * FROM events",
        "DELETE FROM events",
        "UPDATE events SET value = 1",
    ):
        with engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied|must be owner"):
            conn.execute(text(forbidden))
    # The serving application logs what it showed with a plain INSERT (the time defaults to now).
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (kind, user_id, movie_id, model_id, rank) VALUES ('shown', 1, 3, 1, 1)"))
    engine.dispose()
    with recsql.connect(postgresql_url).connect() as conn:
        assert conn.execute(text("SELECT kind, user_id, movie_id, at > 0 FROM events")).one() == ("shown", 1, 3, True)
    out = Cli(as_reader)("train", "--samples", 0, ok=False).output
    assert "may not take recsql's writer lock" in out and "Traceback" not in out

    # Migrations recreate views, which drops their grants: granting again restores them.
    run("db", "downgrade", "0005_popular")
    run("db", "upgrade")
    with pytest.raises(sqlalchemy.exc.ProgrammingError), create_engine(as_reader).connect() as conn:
        conn.execute(text("SELECT * FROM recommended_movies"))
    run("db", "grant-reader", reader)
    with create_engine(as_reader).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM recommended_movies")).scalar() > 0


def test_grant_reader_refuses_unknown_roles_and_sqlite(postgresql_url, sqlite_url, tmp_path):
    out = Cli(postgresql_url)("db", "grant-reader", "no_such_role", ok=False).output
    assert "role 'no_such_role' does not exist" in out and "CREATE ROLE" in out
    out = Cli(sqlite_url)("db", "grant-reader", "web", ok=False).output
    assert "SQLite has no roles" in out


def test_sqlite_readers_can_open_the_file_read_only(sqlite_url, tmp_path):
    """The read-only URL the grant-reader refusal suggests serves and refuses writes."""
    run = Cli(sqlite_url)
    (tmp_path / "r.csv").write_text(RATINGS)
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    path = make_url(sqlite_url).database
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with recsql.Recommender.from_url(read_only) as recommender:
        assert len(recommender.similar(3, limit=3)) == 3
    out = Cli(read_only)("import", "ratings", tmp_path / "r.csv", ok=False).output
    assert "readonly" in out.replace("-", "").replace(" ", "") and "Traceback" not in out


def test_a_reader_can_neither_stop_retrains_nor_read_secrets(postgresql_url, reader, tmp_path):
    """What a reader role tried before it could not: holding the advisory lock recsql
    used to take made every retrain exit 'another writer holds the lock'; and it read
    models.params (a source query with its comments) and models.error."""
    admin = create_engine(normalize_url(postgresql_url))
    with admin.begin() as conn:
        conn.execute(text("CREATE TABLE reviews (customer INTEGER, item INTEGER, stars INTEGER)"))
        conn.execute(
            text(
                "INSERT INTO reviews SELECT u, m, (u * m) % 5 + 1 FROM generate_series(1, 12) u, "
                "generate_series(1, 8) m WHERE (u + m) % 3 <> 0"
            )
        )
    secret = "SELECT customer AS u, item AS m, stars AS r FROM reviews /* the api key is hunter2 */"
    (tmp_path / "source.toml").write_text(f'[ratings]\nquery = "{secret}"\nuser = "u"\nmovie = "m"\nrating = "r"\n')
    run = Cli(postgresql_url)
    run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0)
    run("db", "grant-reader", reader)
    as_reader = make_url(normalize_url(postgresql_url)).set(username=reader).render_as_string(hide_password=False)
    holder = create_engine(as_reader).connect()
    for key in (ADVISORY_KEY, advisory_key(recsql.connect(postgresql_url))):
        assert holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
    with pytest.raises(ProgrammingError, match="permission denied"):
        holder.execute(text("LOCK TABLE recsql_lock IN EXCLUSIVE MODE NOWAIT"))
    holder.rollback()
    # Retrains, activations and prunes go on while the reader holds what it can.
    assert "model 2" in run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0).output
    run("models", "activate", 1)
    run("models", "prune", "--keep", 1)
    with pytest.raises(ProgrammingError, match="permission denied"):
        holder.execute(text("SELECT params, error FROM models"))
    holder.rollback()
    params, from_source = holder.execute(text("SELECT params, from_source FROM active_model")).one()
    assert "hunter2" not in json.dumps(params) and "source" not in params and from_source is True
    assert params["features"] == 2  # what serving needs is still there
    holder.close()
    with recsql.Recommender.from_url(as_reader) as recommender:
        assert recommender.load() == 1 and len(recommender.similar(3, limit=3)) == 3
    admin.dispose()

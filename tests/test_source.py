"""Training from the application's own tables, whose schema differs from recsql's."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

import recsql
from recsql.data.source import Source
from recsql.db.engine import normalize_url
from recsql.errors import InvalidParameter
from tests.conftest import Cli

TOML = """
[ratings]
table = "reviews"
user = "customer_id"
movie = "product_id"
rating = "stars"
time = "created_at"

[movies]
table = "products"
id = "id"
title = "name"
genres = "category"
"""


@pytest.fixture
def shop(db_url, seed_data, tmp_path):
    """A shop database: reviews(customer_id, product_id, stars, created_at), products(id, name, category)."""
    ratings = pd.read_csv(seed_data / "movie_ratings_data_set.csv")
    movies = pd.read_csv(seed_data / "movies.csv")
    raw = create_engine(normalize_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT)"))
        conn.execute(
            text(
                "CREATE TABLE reviews (review_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
                "product_id INTEGER NOT NULL, stars INTEGER, created_at INTEGER)"
            )
        )
        conn.execute(
            text("INSERT INTO products VALUES (:id, :name, :category)"),
            [{"id": int(r.movie_id) + 100, "name": r.title, "category": r.genre} for r in movies.itertuples()],
        )
        conn.execute(
            text("INSERT INTO reviews VALUES (:i, :c, :p, :s, :t)"),
            [
                {"i": i, "c": int(r.user_id) + 5000, "p": int(r.movie_id) + 100, "s": int(r.value), "t": i}
                for i, r in enumerate(ratings.itertuples())
            ]
            + [{"i": 99999, "c": 5001, "p": 101, "s": None, "t": 0}],
        )  # an unrated review is skipped
    config = tmp_path / "recsql.toml"
    config.write_text(TOML)
    yield raw, config
    raw.dispose()


def test_train_and_serve_from_the_applications_tables(shop, engine, run):
    raw, config = shop
    out = run("train", "--source", config, "--samples", 20).output
    assert "680 ratings" in out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM ratings")).scalar() == 0  # nothing copied
        similar = (
            conn.execute(text("SELECT similar_title FROM similar_movies WHERE movie_id = 103 ORDER BY rank LIMIT 3"))
            .scalars()
            .all()
        )
    assert len(similar) == 3 and all(similar)  # titles come from products
    rec = recsql.Recommender(engine)
    assert rec.recommend(5001, limit=3)[0].title
    explained = rec.explain(5001, 103)
    with raw.connect() as conn:
        rated = set(
            conn.execute(
                text("SELECT product_id FROM reviews WHERE customer_id = 5001 AND stars IS NOT NULL")
            ).scalars()
        )
    assert {c.movie_id for c in explained} <= rated and explained
    evaluation = recsql.evaluate(engine, source=config, test_fraction=0.2, samples=0)
    assert evaluation.mean["test_rmse"] < 2


def test_query_source_runs_read_only(shop, engine, db_url):
    raw, _ = shop
    query = "SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews"
    source = Source(query=query, user="u", movie="m", rating="r")
    assert recsql.train(engine, source=source, samples=0).n_ratings == 680
    if "postgresql" in db_url:
        with raw.begin() as conn:
            conn.execute(text("CREATE SEQUENCE counter"))
        for sneaky, refusal in [
            ("WITH gone AS (DELETE FROM products RETURNING id) SELECT 1 AS u, id AS m, 5 AS r FROM gone", "DELETE"),
            ("SELECT nextval('counter') AS u, 1 AS m, 5 AS r", "nextval"),
        ]:
            with pytest.raises(InvalidParameter, match=refusal):
                recsql.train(engine, source=Source(query=sneaky, user="u", movie="m", rating="r"), samples=0)
        with raw.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM products")).scalar() == 34
    from recsql.data.source import reading

    with reading(engine) as conn:  # the database itself refuses a write in a source's transaction
        with pytest.raises(Exception, match="read-only|readonly"):
            conn.exec_driver_sql("DELETE FROM products")
    with raw.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM products")).scalar() == 34


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(table="reviews; DROP TABLE products", user="u", movie="m", rating="r"), "not a plain name"),
        (dict(table="reviews", user='u"; --', movie="m", rating="r"), "not a plain name"),
        (dict(query="DELETE FROM products", user="u", movie="m", rating="r"), "must be a SELECT"),
        (dict(query="SELECT 1 AS u; DROP TABLE products", user="u", movie="m", rating="r"), "single statement"),
        (dict(user="u", movie="m", rating="r"), "exactly one of table or query"),
    ],
)
def test_bad_mappings_are_refused(fields, message):
    with pytest.raises(InvalidParameter, match=message):
        Source(**fields)


def test_bad_toml_is_one_clear_error(run, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ratings]\ntable = 'reviews'\nuser = 'c'\n")
    assert "needs movie, rating" in run("train", "--source", bad, ok=False).output
    bad.write_text("[ratings\n")
    assert "not valid TOML" in run("train", "--source", bad, ok=False).output


def test_serving_runs_the_source_query_read_only_on_any_bind(shop, engine, db_url):
    """A view whose function writes whenever it is allowed to (the way a mapping reaches
    functions a query may not call) trains fine (training reads read-only) and must not
    write when serving explains, even on the host's connection."""
    if "postgresql" not in db_url:
        pytest.skip("SQLite has no SELECT that can write")
    raw, _ = shop
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE writes (n INTEGER)"))
        conn.execute(
            text(
                "CREATE FUNCTION write_if_allowed() RETURNS integer AS $$ "
                "BEGIN IF current_setting('transaction_read_only') = 'off' THEN INSERT INTO writes VALUES (1); END IF; "
                "RETURN 0; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE VIEW scored AS SELECT customer_id AS u, product_id AS m, "
                "stars + write_if_allowed() AS r FROM reviews"
            )
        )
    recsql.train(engine, source=Source(query="SELECT u, m, r FROM scored", user="u", movie="m", rating="r"), samples=0)
    with engine.connect() as conn:
        assert recsql.Recommender(conn).explain(5001, 103)
        conn.commit()
    assert recsql.Recommender(engine).explain(5001, 103)
    with raw.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM writes")).scalar() == 0


def test_inspect_reads_a_source_models_ratings_from_the_application(shop, engine, run):
    """`recsql inspect` of a model trained from the application's tables counts the
    movie's and lists the user's ratings there (recsql's own ratings table is empty)."""
    import json

    raw, config = shop
    run("train", "--source", config, "--samples", 0)
    movie = json.loads(run("inspect", "movie", 103, "--json").output)
    user = json.loads(run("inspect", "user", 5001, "--json").output)
    with raw.connect() as conn:
        count, mean = conn.execute(
            text("SELECT COUNT(*), AVG(stars) FROM reviews WHERE product_id = 103 AND stars IS NOT NULL")
        ).one()
        rated = conn.execute(
            text(
                "SELECT product_id, MAX(stars) FROM reviews WHERE customer_id = 5001 AND stars IS NOT NULL "
                "GROUP BY product_id"
            )
        ).all()
    assert movie["n_ratings"] == count > 0 and movie["mean_rating"] == pytest.approx(float(mean))
    assert {(r["movie_id"], r["rating"]) for r in user["ratings"]} == {(p, float(s)) for p, s in rated}


def _large_objects(raw) -> int:
    with raw.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM pg_largeobject_metadata")).scalar_one()


def test_a_source_query_is_one_checked_select(shop, engine, db_url):
    """What a READ ONLY transaction let through: functions with effects outside the
    database's rows, and text that closes recsql's parentheses to add its own."""
    raw, _ = shop
    harmful = [
        (
            "SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews "
            "WHERE lo_from_bytea(0, convert_to('x', 'UTF8')) > 0",
            "may not call lo_from_bytea",
        ),
        ("SELECT lo_import('/etc/passwd') AS u, 1 AS m, 5 AS r", "may not call lo_import"),
        ("SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews) AS x, (SELECT 1 AS y", "does not parse"),
        ("SELECT pg_advisory_lock(1) AS u, 1 AS m, 5 AS r", "may not call pg_advisory_lock"),
        ("SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews FOR UPDATE", "LOCK"),
        ("SELECT customer_id AS u, product_id AS m, stars AS r INTO copied FROM reviews", "INTO"),
        ("SELECT customer_id AS u, product_id AS m FROM reviews", "no column r"),
    ]
    before = _large_objects(raw) if "postgresql" in db_url else 0
    for query, refusal in harmful:
        with pytest.raises(InvalidParameter, match=refusal):
            recsql.train(engine, source=Source(query=query, user="u", movie="m", rating="r"), samples=0)
    assert recsql.list_models(engine) == []  # refused before any run started
    fine = (
        "SELECT r.customer_id AS u, r.product_id AS m, CAST(MAX(r.stars) AS REAL) AS r -- the best\n"
        "FROM reviews r JOIN products p ON p.id = r.product_id WHERE COALESCE(r.stars, 0) > 0 "
        "GROUP BY r.customer_id, r.product_id"
    )
    assert recsql.train(engine, source=Source(query=fine, user="u", movie="m", rating="r"), samples=0).n_ratings
    if "postgresql" in db_url:
        assert _large_objects(raw) == before


def test_a_source_read_is_rolled_back_and_bounded(shop, engine, db_url, tmp_path):
    """A view may call anything (the way out the refusals name), but its effects are
    rolled back with the read, and a read that runs too long is cancelled."""
    if "postgresql" not in db_url:
        pytest.skip("SQLite views cannot call functions with effects, and SQLite has no statement timeout")
    raw, _ = shop
    with raw.begin() as conn:
        conn.execute(
            text(
                "CREATE VIEW leaky AS SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews "
                "WHERE lo_from_bytea(0, convert_to('x', 'UTF8')) > 0"
            )
        )
        conn.execute(
            text(
                "CREATE VIEW slow AS SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews "
                "WHERE pg_sleep(0.01) IS NOT NULL"
            )
        )
    before = _large_objects(raw)
    assert recsql.train(engine, source=Source(table="leaky", user="u", movie="m", rating="r"), samples=0).n_ratings
    assert _large_objects(raw) == before  # 680 large objects made, and rolled back
    config = tmp_path / "slow.toml"
    config.write_text('[ratings]\ntable = "slow"\nuser = "u"\nmovie = "m"\nrating = "r"\ntimeout = 0.5\n')
    started = time.monotonic()
    out = Cli(db_url)("train", "--source", config, "--samples", 0, ok=False).output
    assert time.monotonic() - started < 20
    assert "ran longer than its time limit" in out and "Traceback" not in out
    assert "timeout = SECONDS in the source mapping" in out  # the setting that allows a longer read


def test_a_source_reads_as_its_role(shop, engine, db_url, tmp_path):
    """`db grant-source ROLE TABLE...` and `role = ROLE`: the mapping's reads run as a
    role that may read those tables and nothing else, whatever its query names."""
    if "postgresql" not in db_url:
        pytest.skip("SQLite has no roles")
    raw, config = shop
    role = f"source_{uuid.uuid4().hex[:8]}"
    with raw.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}"'))
        conn.execute(text("CREATE TABLE secrets (customer_id INTEGER, product_id INTEGER, stars INTEGER)"))
        conn.execute(text("INSERT INTO secrets VALUES (1, 101, 5)"))
    run = Cli(db_url)
    assert role in run("db", "grant-source", role, "reviews", "products").output
    config.write_text(TOML.replace('time = "created_at"', f'time = "created_at"\nrole = "{role}"'))
    assert "680 ratings" in run("train", "--source", config, "--samples", 0).output
    assert recsql.Recommender(engine).explain(5001, 103)  # serving reads as the role too
    sneaky = tmp_path / "sneaky.toml"
    sneaky.write_text(
        f'[ratings]\nquery = "SELECT customer_id, product_id, stars FROM secrets"\n'
        f'user = "customer_id"\nmovie = "product_id"\nrating = "stars"\nrole = "{role}"\n'
    )
    out = run("train", "--source", sneaky, "--samples", 0, ok=False).output
    assert "permission denied" in out and "secrets" in out
    with raw.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


def test_what_runs_is_the_checked_query_regenerated():
    from recsql.data.source_query import checked_select

    query = "select customer_id as u, product_id as m, stars as r /* a note */ from reviews -- the end"
    assert checked_select(query, "postgresql", ["u", "m", "r"]) == (
        "SELECT customer_id AS u, product_id AS m, stars AS r FROM reviews"
    )
    assert Source(table="reviews", user="u", movie="m", rating="r").timeout == 3600
    with pytest.raises(InvalidParameter, match="timeout"):
        Source(table="reviews", user="u", movie="m", rating="r", timeout=0)

"""Application ids of any type: text and UUID keys are imported, mapped to integers once,
and shown (and found) by the views."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

import recsql
import recsql.errors
from recsql.serving.admin import AdminReader
from tests.helpers import readme_sql

USERS = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"u{u}")) for u in range(12)]
MOVIES = [f"sku-{m:03d}" for m in range(8)]
RATINGS = "customer,item,stars\n" + "\n".join(
    f"{USERS[u]},{MOVIES[m]},{(u * m) % 5 + 1}" for u in range(12) for m in range(8) if (u + m) % 3
)
TITLES = "id,name\n" + "\n".join(f"{m},Film {m}" for m in MOVIES)


def _one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_text_ids_from_files_are_served_by_their_keys(engine, run, tmp_path):
    (tmp_path / "r.csv").write_text(RATINGS)
    (tmp_path / "m.csv").write_text(TITLES)
    run("import", "ratings", tmp_path / "r.csv", "--ids", "text", "--columns", "user=customer,movie=item,rating=stars")
    run("import", "movies", tmp_path / "m.csv", "--columns", "movie=id,title=name")  # the catalogue's kind: text
    run("train", "--features", 2, "--samples", 0)
    # One key per id, integers from 1 in order of first appearance.
    assert _one(engine, "SELECT COUNT(*), MIN(movie_id), MAX(movie_id) FROM movie_keys")[0] == (8, 1, 8)
    assert _one(engine, "SELECT COUNT(*) FROM user_keys")[0][0] == 12
    # The application asks by its own key and reads keys back.
    rows = _one(
        engine,
        "SELECT movie_key, title, rank, similar_movie_key, similar_title FROM similar_movies "
        "WHERE movie_key = :k ORDER BY rank",
        k="sku-003",
    )
    readme = _one(engine, readme_sql()["the movies most similar to movie sku-003, by the application's keys"])
    assert [tuple(r) for r in readme] and [r[0] for r in readme] == [r.similar_movie_key for r in rows]
    assert rows and all(r.movie_key == "sku-003" and r.title == "Film sku-003" for r in rows)
    assert {r.similar_movie_key for r in rows} <= set(MOVIES) - {"sku-003"}
    assert all(r.similar_title == f"Film {r.similar_movie_key}" for r in rows)
    recommended = _one(engine, "SELECT user_key, movie_key FROM recommended_movies WHERE user_key = :u", u=USERS[4])
    assert recommended and {r.movie_key for r in recommended} <= set(MOVIES)
    assert {r.movie_key for r in _one(engine, "SELECT movie_key FROM popular_movies")} <= set(MOVIES)
    # A second file maps known keys to the same integers and new ones to the next.
    known = _one(engine, "SELECT movie_id FROM movie_keys WHERE movie_key = 'sku-003'")[0][0]
    (tmp_path / "more.csv").write_text(f"customer,item,stars\n{USERS[0]},sku-new,4\n{USERS[0]},sku-003,2\n")
    run("import", "ratings", tmp_path / "more.csv", "--columns", "user=customer,movie=item,rating=stars")
    assert _one(
        engine, "SELECT movie_id FROM movie_keys WHERE movie_key IN ('sku-003', 'sku-new') ORDER BY movie_id"
    ) == [(known,), (9,)]
    assert _one(engine, "SELECT COUNT(*) FROM user_keys")[0][0] == 12


def test_a_catalogue_has_one_kind_of_id(engine, run, tmp_path):
    (tmp_path / "ints.csv").write_text("user_id,movie_id,value\n1,2,5\n1,3,1\n")
    run("import", "ratings", tmp_path / "ints.csv")
    out = run("import", "ratings", tmp_path / "ints.csv", "--ids", "text", ok=False).output
    assert "this catalogue's ids are integer" in out
    (tmp_path / "blank.csv").write_text("user_id,movie_id,value\n1,2,5\n")
    assert recsql.import_ratings(engine, tmp_path / "blank.csv").rows == 1  # integers go on as before


def test_empty_keys_are_refused_by_line(engine, run, tmp_path):
    (tmp_path / "r.csv").write_text("customer,item,stars\nann,x,4\n ,y,3\n")
    out = run(
        "import",
        "ratings",
        tmp_path / "r.csv",
        "--ids",
        "text",
        "--columns",
        "user=customer,movie=item,rating=stars",
        ok=False,
    ).output
    assert "r.csv, line 3: missing user id" in out
    assert _one(engine, "SELECT COUNT(*) FROM user_keys")[0][0] == 0  # nothing stored


def test_generated_catalogues_can_have_uuid_keys(engine):
    recsql.generate(engine, ratings=2000, users=100, movies=60, ids="text")
    recsql.train(engine, samples=0, features=2)
    key = _one(engine, "SELECT movie_key FROM movie_keys ORDER BY movie_id LIMIT 1")[0][0]
    assert uuid.UUID(key)
    assert _one(engine, "SELECT COUNT(*) FROM similar_movies WHERE movie_key = :k", k=key)[0][0] == 20


@pytest.fixture
def keyed(engine, run, tmp_path):
    (tmp_path / "r.csv").write_text(RATINGS)
    (tmp_path / "m.csv").write_text(TITLES)
    run("import", "ratings", tmp_path / "r.csv", "--ids", "text", "--columns", "user=customer,movie=item,rating=stars")
    run("import", "movies", tmp_path / "m.csv", "--columns", "movie=id,title=name")
    run("train", "--features", 2, "--samples", 0)
    return engine


def test_the_api_takes_and_gives_the_application_keys(keyed):
    rec = recsql.Recommender(keyed)
    similar = rec.similar("sku-003", limit=3)
    assert [s.movie_key for s in similar] == [
        r.similar_movie_key
        for r in _one(
            keyed, "SELECT similar_movie_key FROM similar_movies WHERE movie_key = 'sku-003' ORDER BY rank LIMIT 3"
        )
    ]
    assert rec.movie("sku-003").title == "Film sku-003" and rec.movie("sku-003").movie_key == "sku-003"
    stored = rec.recommend(USERS[4], limit=3)
    assert stored and all(r.movie_key in MOVIES for r in stored)
    assert [r.movie_key for r in rec.recommend(USERS[4], limit=2, exclude=[stored[0].movie_key])] == [
        r.movie_key for r in stored[1:3]
    ]
    new = rec.recommend_for_ratings({"sku-001": 5, "sku-002": 1}, limit=3)
    assert new and all(r.movie_key in set(MOVIES) - {"sku-001", "sku-002"} for r in new)
    assert rec.predict(USERS[4], "sku-003") == pytest.approx(
        rec.predict(
            _one(keyed, "SELECT user_id FROM user_keys WHERE user_key = :k", k=USERS[4])[0][0],
            _one(keyed, "SELECT movie_id FROM movie_keys WHERE movie_key = 'sku-003'")[0][0],
        )
    )
    assert all(c.movie_key in MOVIES for c in rec.explain(USERS[4], "sku-003"))
    many = rec.similar_many(["sku-003", "sku-004"], limit=2)
    assert list(many) == ["sku-003", "sku-004"] and many["sku-003"] == similar[:2]
    assert rec.recommend_many([USERS[4], "nobody"], limit=2)["nobody"][0].source == "popular"
    with pytest.raises(recsql.errors.UnknownMovie, match="sku-999"):
        rec.similar("sku-999")
    # Digits are a key like any other here: "1" is no key, though recsql's movie 1 exists.
    with pytest.raises(recsql.errors.UnknownMovie, match="1"):
        rec.similar("1")
    with pytest.raises(recsql.errors.UnknownUser):
        rec.predict("nobody", "sku-003")


def test_the_cli_takes_keys(keyed, run):
    out = run("similar", "sku-003", "--limit", 2).output
    assert "Film sku-003" in out and "key" in out and "sku-" in out
    assert "sku-" in run("recommend", USERS[4], "--limit", 2).output
    assert "sku-" in run("recommend", "--rate", "sku-001=5", "--rate", "sku-002=1", "--limit", 2).output
    assert "is not a movie key" in run("similar", "sku-999", ok=False).output


def test_integer_catalogues_take_ids_typed_as_text(small_trained, run):
    rec = recsql.Recommender(small_trained)
    assert rec.similar("3", limit=3) == rec.similar(3, limit=3)  # a URL's "3" is movie 3
    assert all(s.movie_key is None for s in rec.similar(3))


SOURCE = """
[ratings]
table = "reviews"
user = "customer"
movie = "product"
rating = "stars"
ids = "text"

[movies]
table = "products"
id = "sku"
title = "name"
"""


def test_sources_with_text_or_uuid_keys(engine, run, tmp_path):
    """The application's own tables keyed by UUIDs (PostgreSQL's uuid type) or text."""
    key_type = "UUID" if engine.dialect.name == "postgresql" else "TEXT"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE reviews (customer {key_type}, product TEXT, stars INTEGER)"))
        conn.execute(text("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT)"))
        for u in range(12):
            for m in range(8):
                if (u + m) % 3:
                    conn.execute(
                        text("INSERT INTO reviews VALUES (:u, :m, :s)"),
                        {"u": USERS[u], "m": MOVIES[m], "s": (u * m) % 5 + 1},
                    )
        for m in MOVIES:
            conn.execute(text("INSERT INTO products VALUES (:m, :n)"), {"m": m, "n": f"Product {m}"})
    (tmp_path / "source.toml").write_text(SOURCE)
    run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0)
    rec = recsql.Recommender(engine)
    similar = rec.similar("sku-003", limit=3)
    assert len(similar) == 3 and all(s.movie_key in MOVIES and s.title.startswith("Product ") for s in similar)
    assert rec.movie("sku-003").title == "Product sku-003"
    explained = rec.explain(USERS[4], "sku-003")  # reads the user's ratings from the source, by key
    assert explained and {c.movie_key for c in explained} <= set(MOVIES)
    assert _one(engine, "SELECT COUNT(*) FROM user_keys")[0][0] == 12
    # A retrain maps the same keys to the same integers.
    before = _one(engine, "SELECT movie_key, movie_id FROM movie_keys ORDER BY movie_id")
    run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0)
    assert _one(engine, "SELECT movie_key, movie_id FROM movie_keys ORDER BY movie_id") == before


# ---------------------------------------------------------------------- keys as given

# Movie keys that look like numbers, imported first so they get the integers 1..9 in this
# order: recsql's movie 7 is "m6", not "7"; user "7" is recsql's user 2, user 7 is "u6".
DIGIT_MOVIES = ["7", "007", "a", "m3", "m4", "m5", "m6", "m7", "m8"]
DIGIT_USERS = ["u0", "7", *(f"u{u}" for u in range(2, 12))]


@pytest.fixture
def digit_keyed(engine, run, tmp_path):
    (tmp_path / "m.csv").write_text("id,name\n" + "\n".join(f"{m},Film {m}" for m in DIGIT_MOVIES))
    (tmp_path / "r.csv").write_text(
        "customer,item,stars\n"
        + "\n".join(
            f"{DIGIT_USERS[u]},{DIGIT_MOVIES[m]},{(u * m + u) % 5 + 1}"
            for u in range(12)
            for m in range(9)
            if (u + m) % 3
        )
    )
    run("import", "movies", tmp_path / "m.csv", "--ids", "text", "--columns", "movie=id,title=name")
    run("import", "ratings", tmp_path / "r.csv", "--columns", "user=customer,movie=item,rating=stars")
    run("train", "--features", 2, "--samples", 0)
    assert _one(engine, "SELECT movie_key FROM movie_keys WHERE movie_id = 7")[0][0] == "m6"
    assert _one(engine, "SELECT user_key FROM user_keys WHERE user_id = 7")[0][0] == "u6"
    return engine


def _json(run, *args):
    return json.loads(run(*args, "--json").stdout)


def _keys(rows) -> list:
    return [r["movie_key"] if isinstance(r, dict) else r.movie_key for r in rows]


def test_cli_ids_are_keys_in_a_text_catalogue(digit_keyed, run):
    rec = recsql.Recommender(digit_keyed)
    others = len(DIGIT_MOVIES) - 1  # every other movie: the lists of two movies differ
    seven, oh_seven, movie_7 = (rec.similar(m, limit=others) for m in ("7", "007", 7))
    assert "7" not in _keys(seven) and "007" not in _keys(oh_seven) and "m6" not in _keys(movie_7)
    assert _keys(seven) != _keys(movie_7) and _keys(oh_seven) != _keys(movie_7)
    assert _keys(_json(run, "similar", "7", "--limit", others)) == _keys(seven)
    assert _keys(_json(run, "similar", "007", "--limit", others)) == _keys(oh_seven)
    assert _keys(_json(run, "similar", "a", "--limit", others)) == _keys(rec.similar("a", limit=others))
    # Keys are taken exactly as given: " a" and "7 " are no keys here.
    for typed in (" a", "a ", "7 ", " 007"):
        assert "is not a movie key" in run("similar", typed, ok=False).output
    # USER_ID, --exclude and --rate are keys too.
    assert _keys(_json(run, "recommend", "7")) == _keys(rec.recommend("7"))
    assert _keys(rec.recommend("7")) != _keys(rec.recommend(7))
    excluded = _keys(_json(run, "recommend", "u6", "--exclude", "7"))
    assert excluded == _keys(rec.recommend("u6", exclude=["7"])) and "7" not in excluded and "m6" in excluded
    rated = _keys(_json(run, "recommend", "--rate", "7=5", "--rate", "007=1", "--limit", others))
    assert rated == _keys(rec.recommend_for_ratings({"7": 5, "007": 1}, limit=others))
    assert "7" not in rated and "007" not in rated and "m6" in rated
    # predict, explain and inspect likewise.
    assert run("predict", "7", "007").stdout.strip() == f"{rec.predict('7', '007'):.4f}"
    assert f"predicted rating {rec.predict('7', '007'):.3f}" in run("explain", "7", "007").output
    assert _json(run, "inspect", "movie", "7")["movie_id"] == rec.movie("7").movie_id == 1
    assert _json(run, "inspect", "user", "7")["user_id"] == AdminReader(digit_keyed).user_id("7") == 2


def test_integer_catalogues_read_digits_as_ids_on_the_cli(small_trained, run):
    rec = recsql.Recommender(small_trained)
    ids = [s.movie_id for s in rec.similar(3, limit=4)]
    for typed in ("3", "003", " 3", "3 "):  # leading zeros and surrounding spaces: still movie 3
        assert [r["movie_id"] for r in _json(run, "similar", typed, "--limit", 4)] == ids
        assert [s.movie_id for s in rec.similar(typed, limit=4)] == ids
    assert [r["movie_id"] for r in _json(run, "recommend", "005", "--exclude", "004")] == [
        r.movie_id for r in rec.recommend(5, exclude=[4])
    ]
    assert [r["movie_id"] for r in _json(run, "recommend", "--rate", "003=5", "--rate", "7=1")] == [
        r.movie_id for r in rec.recommend_for_ratings({3: 5, 7: 1})
    ]
    assert "is not a movie key" in run("similar", "3a", ok=False).output


@pytest.mark.parametrize("key", [" a", "a ", "\ta", "a\t"])
def test_keys_with_surrounding_spaces_are_refused_by_line(engine, run, tmp_path, key):
    (tmp_path / "r.csv").write_text(f"customer,item,stars\nann,a,4\nbob,{key},3\ncid,b,2\n")
    out = run(
        "import",
        "ratings",
        tmp_path / "r.csv",
        "--ids",
        "text",
        "--columns",
        "user=customer,movie=item,rating=stars",
        ok=False,
    ).output
    assert f"r.csv, line 3: movie id {key!r}" in out
    assert "exactly as given" in out and "a, b" in out
    for table in ("user_keys", "movie_keys", "ratings"):
        assert _one(engine, f"SELECT COUNT(*) FROM {table}")[0][0] == 0  # nothing imported
    (tmp_path / "m.csv").write_text(f"id,name\nb,Film b\n{key},Film a\n")
    out = run(
        "import", "movies", tmp_path / "m.csv", "--ids", "text", "--columns", "movie=id,title=name", ok=False
    ).output
    assert f"m.csv, line 3: movie id {key!r}" in out
    assert _one(engine, "SELECT COUNT(*) FROM movie_keys")[0][0] == 0


def test_keys_are_stored_as_given(engine, run, tmp_path):
    """A quoted field is a key like any other, and a key in the last field of a file with
    CRLF line ends carries no \\r."""
    (tmp_path / "r.csv").write_bytes(b'customer,stars,item\r\nann,4,a\r\nbob,3,"b c"\r\n')
    run("import", "ratings", tmp_path / "r.csv", "--ids", "text", "--columns", "user=customer,movie=item,rating=stars")
    assert [r[0] for r in _one(engine, "SELECT movie_key FROM movie_keys ORDER BY movie_id")] == ["a", "b c"]
    (tmp_path / "q.csv").write_text('customer,stars,item\ncid,2," a"\n')
    out = run(
        "import", "ratings", tmp_path / "q.csv", "--columns", "user=customer,movie=item,rating=stars", ok=False
    ).output
    assert "q.csv, line 2: movie id ' a'" in out


def test_source_keys_are_stored_as_the_application_has_them(engine, run, tmp_path):
    products = ["a", " a", "a ", "7", "007", "b", "c", "d"]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE reviews (customer TEXT, product TEXT, stars INTEGER)"))
        conn.execute(text("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT)"))
        for u in range(10):
            for m, product in enumerate(products):
                if (u + m) % 3:
                    conn.execute(
                        text("INSERT INTO reviews VALUES (:u, :m, :s)"),
                        {"u": f" u{u}", "m": product, "s": (u * m + u) % 5 + 1},
                    )
        for m, product in enumerate(products):
            conn.execute(text("INSERT INTO products VALUES (:m, :n)"), {"m": product, "n": f"Product {m}"})
    (tmp_path / "source.toml").write_text(SOURCE)
    run("train", "--source", tmp_path / "source.toml", "--features", 2, "--samples", 0)
    assert sorted(r[0] for r in _one(engine, "SELECT movie_key FROM movie_keys")) == sorted(products)
    assert sorted(r[0] for r in _one(engine, "SELECT user_key FROM user_keys")) == sorted(f" u{u}" for u in range(10))
    rec = recsql.Recommender(engine)
    assert rec.movie(" a").title == "Product 1" and rec.movie("a ").title == "Product 2"
    assert _json(run, "inspect", "movie", " a")["title"] == "Product 1"
    assert _json(run, "inspect", "user", " u3")["user_id"] == AdminReader(engine).user_id(" u3")
    assert "is not a user key" in run("inspect", "user", "u3", ok=False).output

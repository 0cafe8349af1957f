"""Application ids of any type: text and UUID keys are imported, mapped to integers once,
and shown (and found) by the views."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

import recsql
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
    rows = _one(engine, "SELECT movie_key, title, rank, similar_movie_key, similar_title FROM similar_movies "
                        "WHERE movie_key = :k ORDER BY rank", k="sku-003")
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
    assert _one(engine, "SELECT movie_id FROM movie_keys WHERE movie_key IN ('sku-003', 'sku-new') ORDER BY movie_id") \
        == [(known,), (9,)]
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
    out = run("import", "ratings", tmp_path / "r.csv", "--ids", "text",
              "--columns", "user=customer,movie=item,rating=stars", ok=False).output
    assert "r.csv, line 3: missing user id" in out
    assert _one(engine, "SELECT COUNT(*) FROM user_keys")[0][0] == 0  # nothing stored


@pytest.mark.parametrize("kind", ["text"])
def test_generated_catalogues_can_have_uuid_keys(engine, kind):
    recsql.generate(engine, ratings=2000, users=100, movies=60, ids=kind)
    recsql.train(engine, samples=0, features=2)
    key = _one(engine, "SELECT movie_key FROM movie_keys ORDER BY movie_id LIMIT 1")[0][0]
    assert uuid.UUID(key)
    assert _one(engine, "SELECT COUNT(*) FROM similar_movies WHERE movie_key = :k", k=key)[0][0] == 20

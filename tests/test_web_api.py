"""recsql in a web application: the example Flask app (docs/examples/flask_app.py) on
both databases, the HTTP status of every error, and the embedding guide's table of them."""

from __future__ import annotations

import importlib.util
import re
import threading
import time
import uuid
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text

import recsql
from recsql import errors, store
from tests.conftest import ROOT
from tests.test_store import RATINGS


def _example_app() -> ModuleType:
    path = ROOT / "docs" / "examples" / "flask_app.py"
    spec = importlib.util.spec_from_file_location("flask_app_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flask_app = _example_app()


@pytest.fixture(scope="module")
def engine(module_db_url, tmp_path_factory):
    """The RATINGS of test_store (12 users, movies 1-8 rated 1-5), a tiny model trained once."""
    path = tmp_path_factory.mktemp("ratings") / "ratings.csv"
    path.write_text(RATINGS)
    engine = recsql.connect(module_db_url)
    recsql.import_ratings(engine, path)
    recsql.train(engine, samples=0, features=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def recommender(engine):
    return recsql.Recommender(engine)


@pytest.fixture(scope="module")
def client(recommender):
    return flask_app.create_app(recommender).test_client()


def test_answers(client, recommender):
    similar = client.get("/movies/1/similar?limit=3")
    assert similar.status_code == 200
    assert [m["movie_id"] for m in similar.json] == [m.movie_id for m in recommender.similar(1, limit=3)]
    many = client.get("/movies/similar?id=1&id=2&limit=2").json
    assert many == {key: client.get(f"/movies/{key}/similar?limit=2").json for key in ("1", "2")}
    recs = client.get("/users/1/recommendations?limit=3")
    assert recs.status_code == 200 and 0 < len(recs.json) <= 3
    assert {r["source"] for r in recs.json} == {"model"}
    newcomer = client.get("/users/999/recommendations?limit=2").json
    assert [r["source"] for r in newcomer] == ["popular", "popular"]
    assert client.get("/users/1/predictions/2").json["predicted_rating"] == pytest.approx(recommender.predict(1, 2))
    posted = client.post("/recommendations?limit=3", json={"ratings": {"1": 5, "2": 4.5}})
    assert posted.status_code == 200 and len(posted.json) == 3
    assert not {1, 2} & {r["movie_id"] for r in posted.json}


@pytest.mark.parametrize(
    "method,path,body,status,says",
    [
        ("get", "/movies/999/similar", None, 404, "unknown movie 999"),
        ("get", "/movies/similar?id=1&id=998&id=999", None, 404, "unknown movie 998, 999"),
        ("get", "/users/424242/predictions/1", None, 404, "unknown user 424242"),
        ("post", "/recommendations", {"ratings": {"1": 5, "999": 4}}, 404, "unknown movie 999"),
        ("get", "/movies/1/similar?limit=0", None, 400, "limit must be a whole number from 1 to 1000"),
        ("get", "/users/1/recommendations?limit=1001", None, 400, "limit must be"),
        ("get", "/movies/1/similar?limit=ten", None, 400, "limit must be a whole number, not 'ten'"),
        ("post", "/recommendations", {"ratings": {"1": 50}}, 400, "ratings must be from 1 to 5"),
        ("post", "/recommendations", {"ratings": {"1": "5"}}, 400, "must be a finite number"),
        ("post", "/recommendations", {"ratings": {"one": 5}}, 400, "movie id must be a whole number"),
        ("post", "/recommendations", {"ratings": {}}, 400, "at least one"),
        ("post", "/recommendations", {"stars": 5}, 400, "send a JSON object"),
    ],
)
def test_errors_have_their_status(client, method, path, body, status, says):
    answer = getattr(client, method)(path, json=body)
    assert answer.status_code == status, answer.json
    assert says in answer.json["error"]


def test_no_model_yet_and_database_down(db_url):
    """503 for what a retry may cure: nothing trained yet, the database unreachable."""
    engine = recsql.connect(db_url)
    try:
        answer = flask_app.create_app(recsql.Recommender(engine)).test_client().get("/movies/1/similar")
        assert answer.status_code == 503 and "no model has been trained yet" in answer.json["error"]
    finally:
        engine.dispose()
    down = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none"
        if db_url.startswith("postgresql")
        else f"sqlite:///{ROOT / 'no-such-directory' / 'recsql.db'}"
    )
    answer = flask_app.create_app(recsql.Recommender(down)).test_client().get("/users/1/recommendations")
    assert answer.status_code == 503 and answer.json["error"].startswith("database error: ")


def test_a_role_without_grants_is_told_to_grant(engine):
    """PostgreSQL: a role that cannot read the views (`grant-reader` not run, or not run
    again after an upgrade recreated them) gets 503 and the command, not a traceback."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no roles")
    role = f"recsql_web_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    ungranted = create_engine(engine.url.set(username=role))
    try:
        answer = flask_app.create_app(recsql.Recommender(ungranted)).test_client().get("/movies/1/similar")
        assert answer.status_code == 503 and "permission denied" in answer.json["error"]
        assert "recsql db grant-reader" in answer.json["error"]
    finally:
        ungranted.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))


def test_requests_share_one_recommender_across_threads(engine, monkeypatch):
    """Eight threads at once on a fresh app: one Recommender, the model loaded once, the
    same answers everywhere."""
    loads = []
    load = store.load_movie_factors

    def slow_load(*args, **kwargs):
        loads.append(threading.get_ident())
        time.sleep(0.2)  # every thread arrives while the first one loads
        return load(*args, **kwargs)

    monkeypatch.setattr(store, "load_movie_factors", slow_load)
    shared = recsql.Recommender(engine)
    app = flask_app.create_app(shared)
    answers: list[tuple[int, object, int, object]] = []

    def visit() -> None:
        client = app.test_client()
        posted = client.post("/recommendations?limit=3", json={"ratings": {"1": 5, "3": 2}})
        similar = client.get("/movies/2/similar")
        answers.append((posted.status_code, posted.json, similar.status_code, similar.json))

    threads = [threading.Thread(target=visit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and {(a[0], a[2]) for a in answers} == {(200, 200)}
    assert all(a[1] == answers[0][1] and a[3] == answers[0][3] for a in answers)
    assert app.extensions["recsql"] is shared and len(loads) == 1


# ---------------------------------------------------------------------- statuses


def _error_classes() -> list[type[errors.RecsqlError]]:
    found, todo = [], [errors.RecsqlError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_chose_its_status(cls):
    """Each class sets ``http_status`` itself or inherits it from a parent below
    RecsqlError: none falls back to the base class's 500 by forgetting."""
    chosen_by = next(base for base in cls.__mro__ if "http_status" in vars(base))
    assert chosen_by is not errors.RecsqlError or cls is errors.RecsqlError
    assert cls.http_status in (400, 404, 500, 503)


def test_not_found_errors_share_a_base():
    for cls in (errors.UnknownMovie, errors.UnknownUser, errors.UnknownModel):
        assert issubclass(cls, errors.NotFound) and issubclass(cls, LookupError) and cls.http_status == 404


def test_the_documented_status_table_is_the_code():
    readme = (ROOT / "docs" / "howto" / "embed.md").read_text()
    section = readme.split("## HTTP status codes", 1)[1].split("\n## ", 1)[0]
    documented = {name: int(status) for name, status in re.findall(r"^\| `(\w+)` \| (\d{3}) \|", section, flags=re.M)}
    assert documented == {cls.__name__: cls.http_status for cls in _error_classes()}

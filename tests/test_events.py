"""Events: appended by plain INSERTs, the API's batches and file imports, checked (a bad
row writes nothing), written concurrently without loss, pruned by age."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

import recsql
from recsql.data import events as events_module
from recsql.db.engine import normalize_url
from recsql.errors import InputError, InvalidParameter
from tests.conftest import SMALL_RATINGS


def _rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT kind, user_id, movie_id, at, model_id, list, rank, value FROM events ORDER BY id")
            )
        ]


def test_a_plain_insert_gets_the_database_clock_and_bad_kinds_are_refused_by_the_database(engine):
    before = int(time.time())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (kind, user_id, movie_id) VALUES ('clicked', 4, 7)"))
    ((kind, user, movie, at, *rest),) = _rows(engine)
    assert (kind, user, movie, rest) == ("clicked", 4, 7, [None, None, None, None])
    assert before - 2 <= at <= time.time() + 2
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO events (kind, user_id, movie_id) VALUES ('liked', 4, 7)"))


def test_log_events_takes_frames_and_dicts_and_refuses_a_bad_batch_whole(engine):
    frame = pd.DataFrame(
        {
            "kind": ["shown", "shown", "clicked"],
            "user_id": [1, 1, 1],
            "movie_id": [10, 11, 10],
            "model_id": [3, 3, None],
            "list": ["recommended", "recommended", None],
            "rank": [1, 2, None],
            "at": pd.to_datetime(["2026-12-01 10:00:00", "2026-12-01 10:00:00", "2026-12-01 10:00:30"]),
        }
    )
    assert recsql.log_events(engine, frame) == 3
    assert (
        recsql.log_events(engine, [{"kind": "rated", "user_id": 1, "movie_id": 10, "value": 4.5, "at": 1_800_000_000}])
        == 1
    )
    stamp = int(pd.Timestamp("2026-12-01 10:00:00", tz="UTC").timestamp())
    assert _rows(engine) == [
        ("shown", 1, 10, stamp, 3, "recommended", 1, None),
        ("shown", 1, 11, stamp, 3, "recommended", 2, None),
        ("clicked", 1, 10, stamp + 30, None, None, None, None),
        ("rated", 1, 10, 1_800_000_000, None, None, None, 4.5),
    ]
    for bad, message in (
        (
            {"kind": ["shown", "liked"], "user_id": [1, 2], "movie_id": [1, 2]},
            "event 1 (counting from 0): kind 'liked'",
        ),
        ({"kind": ["shown"], "user_id": [1.5], "movie_id": [1]}, "whole numbers"),
        ({"kind": ["shown"], "user_id": [1], "movie_id": [1], "at": [-5]}, "not Unix seconds"),
        ({"kind": ["rated"], "user_id": [1], "movie_id": [1], "value": ["lots"]}, "not a finite number"),
        ({"kind": ["shown"], "user_id": [1], "movie_id": [1], "list": ["x" * 33]}, "at most 32"),
        ({"kind": ["shown"], "user_id": [1]}, "need a movie_id column"),
        ({"kind": ["shown"], "user_id": [1], "movie_id": [1], "colour": ["red"]}, "no column colour"),
    ):
        with pytest.raises(InvalidParameter, match=re.escape(message)):
            recsql.log_events(engine, bad)
    assert len(_rows(engine)) == 4


def test_import_events_file_and_its_refusals(engine, run, tmp_path):
    good = tmp_path / "events.csv"
    good.write_text(
        "kind,user_id,movie_id,at,model_id,list,rank,value\n"
        "shown,1,10,1800000000,2,recommended,1,\n"
        "clicked,1,10,1800000060,,,,\n"
        "bought,1,10,,,,,9.99\n"
    )
    assert "imported 3 events" in run("events", "import", good).output
    rows = _rows(engine)
    assert rows[0] == ("shown", 1, 10, 1_800_000_000, 2, "recommended", 1, None)
    assert rows[1] == ("clicked", 1, 10, 1_800_000_060, None, None, None, None)
    assert rows[2][0] == "bought" and rows[2][7] == 9.99 and abs(rows[2][3] - time.time()) < 60
    for text_, message in (
        ("kind,user_id,movie_id\nshown,1,2\nliked,1,2\n", "line 3: kind 'liked'"),
        ("kind,user_id,movie_id\nshown,1,x\n", "line 2: movie_id 'x' is not a whole number"),
        ("kind,user_id,movie_id,model_id\nshown,1,2,1.5\n", "line 2: model_id '1.5'"),
        ("kind,user,movie_id\nshown,1,2\n", "line 1: the header names 'user'"),
        ("kind,movie_id\nshown,2\n", "no user_id column"),
        ("kind,user_id,movie_id\nshown,1\n", "line 2: expected 3 fields"),
        ("kind,user_id,movie_id\n", "no events"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(text_)
        result = run("events", "import", bad, ok=False)
        assert result.exit_code == 1 and message in result.output, (text_, result.output)
        with pytest.raises(InputError):
            recsql.import_events(engine, bad)
    assert len(_rows(engine)) == 3  # nothing of a bad file


def test_events_of_a_text_id_catalogue_take_its_keys(engine, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,movie_id,value\nann,m-1,4\nann,m-2,3\nbob,m-1,5\n")
    recsql.import_ratings(engine, path, ids="text")
    recsql.log_events(engine, {"kind": ["clicked", "clicked"], "user_id": ["bob", "cid"], "movie_id": ["m-2", "m-1"]})
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT uk.user_key, mk.movie_key FROM events e JOIN user_keys uk ON uk.user_id = e.user_id "
                "JOIN movie_keys mk ON mk.movie_id = e.movie_id ORDER BY e.id"
            )
        ).all()
    assert [tuple(r) for r in found] == [("bob", "m-2"), ("cid", "m-1")]


def test_eight_concurrent_writers_lose_nothing(db_url):
    """Four writers log batches through the API and four insert one row per statement
    (an application's own INSERTs), all at once, each on its own connection."""
    per_writer, batch = 400, 50
    engines = [recsql.connect(db_url, lock_timeout=60) for _ in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def batches(writer: int) -> None:
        start.wait()
        for first in range(0, per_writer, batch):
            ids = np.arange(first, first + batch)
            recsql.log_events(
                engines[writer], {"kind": ["shown"] * batch, "user_id": [writer] * batch, "movie_id": ids}
            )

    def inserts(writer: int) -> None:
        start.wait()
        for movie in range(per_writer):
            with engines[writer].begin() as conn:
                conn.execute(
                    text("INSERT INTO events (kind, user_id, movie_id) VALUES ('clicked', :u, :m)"),
                    {"u": writer, "m": movie},
                )

    def guarded(work, writer):
        try:
            work(writer)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(batches if w < 4 else inserts, w)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as conn:
        counts = dict(conn.execute(text("SELECT user_id, COUNT(DISTINCT movie_id) FROM events GROUP BY user_id")).all())
        total = conn.execute(text("SELECT COUNT(*) FROM events")).scalar()
    assert counts == {w: per_writer for w in range(8)} and total == 8 * per_writer
    for engine in engines:
        engine.dispose()


def test_prune_deletes_only_old_events_in_batches(engine, run, monkeypatch):
    day = 86_400
    now = int(time.time())
    ages = [400, 100, 91, 89, 1, 0]
    recsql.log_events(
        engine, {"kind": ["shown"] * 6, "user_id": range(6), "movie_id": [1] * 6, "at": [now - a * day for a in ages]}
    )
    monkeypatch.setattr(events_module, "PRUNE_BATCH", 2)
    assert recsql.prune_events(engine, older_than_days=90) == 3
    assert sorted(r[1] for r in _rows(engine)) == [3, 4, 5]
    assert "deleted 1 events older than 30 days" in run("events", "prune", "--older-than-days", 30).output
    assert run("events", "prune", "--older-than-days", 0, ok=False).exit_code == 1


def test_a_retrain_learns_from_events_as_the_ratings_their_kinds_stand_for(engine, run, tmp_path):
    from recsql.data.ratings import ratings_from_database

    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    # user 1 never rated movies 2 and 5 (SMALL_RATINGS leaves out (u + m) % 3 == 0): signals for them.
    recsql.log_events(
        engine,
        {
            "kind": ["clicked", "bought", "watched", "rated", "shown", "clicked"],
            "user_id": [1, 1, 1, 1, 1, 13],
            "movie_id": [2, 2, 5, 1, 8, 1],
            "value": [None, None, None, 1.0, None, None],
        },
    )
    toml = tmp_path / "events.toml"
    toml.write_text("[events]\nclicked = 3\nwatched = 4\nbought = 5\n")
    source = recsql.Source.from_toml(toml)
    matrix = ratings_from_database(engine, "max", source)
    value = {
        (int(matrix.user_ids[r]), int(matrix.movie_ids[c])): v
        for r, c, v in zip(matrix.rows, matrix.cols, matrix.values)
    }
    stored = {(u, m): (u * m) % 5 + 1 for u in range(1, 13) for m in range(1, 9) if (u + m) % 3}
    assert value == {**stored, (1, 2): 5.0, (1, 5): 4.0, (1, 1): max(stored[(1, 1)], 1.0), (13, 1): 3.0}
    out = run("train", "--source", toml, "--features", 2, "--samples", 0).output
    assert f"{len(value)} ratings" in out
    (model, *_) = recsql.list_models(engine)
    assert model.n_ratings == len(value) and model.params["source"]["query"].count("events") == 1
    with engine.connect() as conn:
        listed = set(conn.execute(text("SELECT movie_id FROM recommended_movies WHERE user_id = 1")).scalars())
    assert not listed & {2, 5}  # what user 1 bought or watched counts as seen
    for bad, message in (
        ("[events]\nliked = 3\n", "unknown [events] keys ['liked']"),
        ("[events]\nclicked = 'a lot'\n", "must be a number"),
        ("[events]\nclicked = 3\n[ratings]\nuser = 'u'\n", "instead of [ratings]"),
    ):
        toml.write_text(bad)
        result = run("train", "--source", toml, ok=False)
        assert result.exit_code == 1 and message in result.output, result.output


def test_in_a_namespace_of_its_own_the_application_writes_recsql_events(postgresql_url):
    engine = recsql.connect(postgresql_url, schema="recsql")
    application = create_engine(normalize_url(postgresql_url))
    with application.begin() as conn:
        conn.execute(text("INSERT INTO recsql.events (kind, user_id, movie_id) VALUES ('clicked', 1, 2)"))
    assert [r[:3] for r in _rows(engine)] == [("clicked", 1, 2)]
    assert recsql.log_events(engine, {"kind": ["shown"], "user_id": [1], "movie_id": [2]}) == 1
    with application.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM recsql.events")).scalar() == 2
    application.dispose()
    engine.dispose()


def test_a_lock_the_application_holds_makes_a_batch_give_up_cleanly(postgresql_url):
    """The application holds events locked (a migration of its own, say): a batch waits
    for the lock timeout, then fails with one clear error and writes nothing; after the
    lock goes, the same batch goes in whole."""
    engine = recsql.connect(postgresql_url, lock_timeout=1)
    batch = {"kind": ["shown"] * 3, "user_id": [1, 2, 3], "movie_id": [4, 4, 4]}
    application = create_engine(normalize_url(postgresql_url))
    with application.begin() as conn:
        conn.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(recsql.RecsqlError, match="lock"):
            recsql.log_events(engine, batch)
        with pytest.raises(recsql.RecsqlError, match="lock"):
            recsql.prune_events(engine, older_than_days=1)
    assert _rows(engine) == []
    assert recsql.log_events(engine, batch) == 3 and len(_rows(engine)) == 3
    application.dispose()
    engine.dispose()

"""Model.save and recsql.load_model: a model fitted in memory, saved into a database,
serves through the views and Recommender as the same model trained there does; saving
into a database that already serves a model is a retrain's switch (the old one retired,
a failed or killed save leaves it active); a model read back is the one saved."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import sqlalchemy
from sqlalchemy import text

import recsql
from recsql.db import bulk
from recsql.db.engine import normalize_url
from recsql.errors import Busy, InvalidParameter
from recsql.progress import STALL_ENV, STALL_MARK
from tests.conftest import SMALL_RATINGS

NAMES = ["user_id", "movie_id", "rating", "timestamp"]
# Options given to the fit and the retrain alike (tests/test_memory.py compares them at the
# defaults): a fixed item penalty and fewer sweeps keep the suite quick.
FAST = {"item_regularization": 250.0, "max_iterations": 5}
VIEWS = {
    "similar_movies": "SELECT movie_id, rank, similar_movie_id, score FROM similar_movies ORDER BY movie_id, rank",
    "recommended_movies": "SELECT user_id, rank, movie_id, predicted_rating, score FROM recommended_movies "
    "ORDER BY user_id, rank",
    "popular_movies": "SELECT rank, movie_id, score, n_ratings, mean_rating FROM popular_movies ORDER BY rank",
}


@pytest.fixture(scope="module")
def u1(ml100k):
    return pd.read_csv(ml100k / "u1.base", sep="\t", names=NAMES)


@pytest.fixture(scope="module")
def fitted(u1):
    return recsql.fit(u1, **FAST)


@pytest.fixture(scope="module")
def trained(ml100k, tmp_path_factory):
    """recsql train on the same ratings, for reference."""
    engine = recsql.connect(f"sqlite:///{tmp_path_factory.mktemp('trained') / 'r.db'}")
    recsql.import_ratings(engine, ml100k / "u1.base")
    recsql.train(engine, **FAST)
    yield engine
    engine.dispose()


def _view_rows(engine) -> dict[str, np.ndarray]:
    with engine.connect() as conn:
        return {name: np.array(conn.execute(text(sql)).all(), dtype=np.float64) for name, sql in VIEWS.items()}


def _answers(engine) -> list:
    """What an application asks of the active model, through Recommender."""
    with recsql.Recommender(engine) as served:
        return [
            [(s.movie_id, round(s.score, 9)) for s in served.similar(50, limit=10)],
            [(r.movie_id, round(r.score, 9)) for r in served.recommend(13, limit=10)],
            [r.movie_id for r in served.recommend(13, limit=12, exclude=[50, 181])],  # ranked afresh: stored 10
            [r.movie_id for r in served.recommend(99999, limit=5)],  # a new user: the popular movies
            [(r.movie_id, round(r.score, 9)) for r in served.recommend_for_ratings({50: 5, 181: 4, 1: 2})],
            round(served.predict(13, 181), 9),
            [(c.movie_id, round(c.contribution, 9)) for c in served.explain(13, 181)],
        ]


def test_a_model_saved_from_memory_serves_like_the_one_trained(db_url, ml100k, fitted, trained, small_csv):
    """The target database already serves a model of other ratings and holds the same
    ratings as the trained one: the saved model becomes the active one, retires the old,
    and every view and Recommender answer is the trained model's."""
    engine = recsql.connect(db_url)
    try:
        recsql.import_ratings(engine, small_csv)
        old = recsql.train(engine, samples=0, features=2).model_id
        recsql.import_ratings(engine, ml100k / "u1.base", replace=True)
        model_id = fitted.save(engine)
        statuses = {m.model_id: m.status for m in recsql.list_models(engine)}
        assert statuses == {old: "retired", model_id: "active"}
        mine, theirs = _view_rows(engine), _view_rows(trained)
        for name in VIEWS:
            assert mine[name].shape == theirs[name].shape and mine[name].shape[0] > 0, name
            np.testing.assert_allclose(mine[name], theirs[name], rtol=0, atol=1e-9, err_msg=name)
        assert _answers(engine) == _answers(trained)
        with recsql.Recommender(engine) as served:  # what is ranked on the spot, in memory and served, alike
            longer = fitted.recommend([13], n=12)
            assert longer.movie_id.tolist() == [r.movie_id for r in served.recommend(13, limit=12)]
            assert longer.score.to_numpy() == pytest.approx([r.score for r in served.recommend(13, limit=12)])
            given = {50: 5, 181: 4, 1: 2, 99_999: 5}  # a movie the model does not know is passed over
            new = fitted.recommend_for_ratings(given)
            assert new.movie_id.tolist() == [r.movie_id for r in served.recommend_for_ratings({50: 5, 181: 4, 1: 2})]
            assert (new.source == "model").all() and (new.user_id == -1).all()
        saved, reference = recsql.show_model(engine, model_id), recsql.list_models(trained)[0]
        assert saved.params == reference.params and saved.algorithm == reference.algorithm
        assert saved.metrics is not None and reference.metrics is not None
        assert saved.metrics.keys() == reference.metrics.keys()
        for name, value in reference.metrics.items():
            assert np.asarray(saved.metrics[name]) == pytest.approx(np.asarray(value)), name
        assert (saved.n_users, saved.n_movies, saved.n_ratings) == (reference.n_users, reference.n_movies, 80_000)
        assert saved.timings is not None and "write" in saved.timings and "fit" in saved.timings
    finally:
        engine.dispose()


def test_a_model_read_back_is_the_model_saved(tmp_path, fitted, u1):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    model_id = fitted.save(url, activate=False)  # an empty database: no ratings, no active model
    assert [(m.status, m.activated_at) for m in recsql.list_models(recsql.connect(url))] == [("retired", None)]
    with pytest.raises(recsql.errors.NoActiveModel):
        recsql.load_model(url)
    loaded = recsql.load_model(url, model_id)
    assert loaded.model_id == model_id and loaded.fitted is None and loaded.params == fitted.params
    pairs = u1.sample(2_000, random_state=0)
    np.testing.assert_allclose(
        loaded.predict(pairs.user_id, pairs.movie_id).predicted_rating,
        fitted.predict(pairs.user_id, pairs.movie_id).predicted_rating,
        atol=1e-12,
    )
    mine, theirs = loaded.lists(), fitted.lists()
    assert mine.keys() == theirs.keys() == {"movie_similarities", "user_recommendations", "movie_popularity"}
    for table in mine:
        pd.testing.assert_frame_equal(mine[table], theirs[table], check_dtype=False, atol=1e-12)
    pd.testing.assert_frame_equal(loaded.similar([1, 50]), fitted.similar([1, 50]), check_dtype=False)
    pd.testing.assert_frame_equal(loaded.recommend([1, 7]), fitted.recommend([1, 7]), check_dtype=False)
    with pytest.raises(InvalidParameter, match="keeps only its stored lists"):
        loaded.recommend([1], n=11)
    recsql.activate_model(recsql.connect(url), model_id)
    again = loaded.save(f"sqlite:///{tmp_path / 'copy.db'}")  # a model read back saves like a fitted one
    pd.testing.assert_frame_equal(
        recsql.load_model(f"sqlite:///{tmp_path / 'copy.db'}", again).lists()["user_recommendations"],
        theirs["user_recommendations"],
        check_dtype=False,
    )


def _small_model(**given):
    return recsql.fit(pd.read_csv(io.StringIO(SMALL_RATINGS)), samples=0, features=2, **given)


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(SMALL_RATINGS)
    return path


def test_a_database_the_model_cannot_stand_for_is_refused_with_nothing_written(db_url, tmp_path, small_csv):
    engine = recsql.connect(db_url)
    try:
        recsql.import_ratings(engine, small_csv, rating_scale=(0, 10))
        model = _small_model()
        with pytest.raises(InvalidParameter, match=r"scale 0 to 10 .* rating_scale=\(0, 10\)"):
            model.save(engine)
        assert recsql.list_models(engine) == []
        keyed = recsql.connect(f"sqlite:///{tmp_path / 'keys.db'}")
        keys_csv = tmp_path / "keys.csv"
        keys_csv.write_text("user_id,movie_id,value\nann,m1,4\nbob,m2,3\n")
        recsql.import_ratings(keyed, keys_csv, ids="text")
        with pytest.raises(InvalidParameter, match="maps text ids"):
            model.save(keyed)
        assert recsql.list_models(keyed) == []
        keyed.dispose()
        with pytest.raises(InvalidParameter, match="rating_scale"):
            recsql.fit(pd.DataFrame({"user_id": [1], "movie_id": [2], "value": [11.0]}), rating_scale=(0, 10))
        assert _small_model(rating_scale=(0, 10)).save(engine) == 1  # fitted on the database's scale
    finally:
        engine.dispose()


def test_a_failed_save_leaves_the_active_model_serving(db_url, monkeypatch, small_csv):
    engine = recsql.connect(db_url)
    try:
        recsql.import_ratings(engine, small_csv)
        model = _small_model()
        first = model.save(engine)
        before = _view_rows(engine)
        insert = bulk.insert_columns

        def broken(conn, table, columns, *args, **kwargs):
            if table == "user_recommendations":
                raise OSError("the connection died")
            return insert(conn, table, columns, *args, **kwargs)

        monkeypatch.setattr(bulk, "insert_columns", broken)
        with pytest.raises(OSError, match="connection died"):
            model.save(engine)
        monkeypatch.undo()
        statuses = {m.model_id: m.status for m in recsql.list_models(engine)}
        assert statuses[first] == "active" and list(statuses.values()).count("failed") == 1
        after = _view_rows(engine)
        for name in VIEWS:
            np.testing.assert_array_equal(before[name], after[name])
        with recsql.db.lock.writer_lock(engine), pytest.raises(Busy):
            model.save(engine)  # another writer (a retrain) holds the lock: refused at once
        third = model.save(engine, keep=1)  # older versions pruned as a retrain prunes them
        statuses = {m.model_id: m.status for m in recsql.list_models(engine)}
        assert statuses[third] == "active" and statuses[first] == "pruned" and "failed" not in statuses.values()
    finally:
        engine.dispose()


def test_a_killed_save_is_reclaimed_and_the_old_model_still_serves(db_url, small_csv):
    engine = recsql.connect(db_url)
    try:
        recsql.import_ratings(engine, small_csv)
        first = _small_model().save(engine)
        script = textwrap.dedent(
            f"""
            import pandas as pd, recsql
            frame = pd.read_csv({str(small_csv)!r})
            recsql.fit(frame, samples=0, features=2).save({db_url!r})
            """
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, STALL_ENV: "write:3"},
        )
        assert child.stderr is not None
        line = child.stderr.readline()
        assert line.startswith(STALL_MARK), line + child.communicate()[1]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert recsql.load_model(engine).model_id == first  # the views never saw the half-written model
        second = _small_model().save(engine)  # the next writer reclaims the dead save
        statuses = {m.model_id: m.status for m in recsql.list_models(engine)}
        assert statuses[first] == "retired" and statuses[second] == "active"
        assert sorted(statuses.values()).count("failed") + sorted(statuses.values()).count("pruned") == 1
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- text ids


@pytest.fixture(scope="module")
def keyed(u1):
    """u1 with text ids whose sorted order is the integers' (so the same model is fitted)."""
    return u1.assign(user_id=u1.user_id.map("u{:04d}".format), movie_id=u1.movie_id.map("m{:04d}".format))


@pytest.fixture(scope="module")
def keyed_model(keyed):
    return recsql.fit(keyed, **FAST)


def test_text_ids_fit_the_same_model_and_answer_by_key(fitted, keyed_model):
    model = keyed_model
    assert model.keys is not None
    got = model.predict(["u0013", "u0013", "nobody"], ["m0181", "m9999", "m0181"])
    expected = fitted.predict([13, 13], [181, 9999]).predicted_rating
    assert got.user_id.tolist() == ["u0013", "u0013", "nobody"] and got.known.tolist() == [True, False, False]
    assert got.predicted_rating[:2].tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    mine, theirs = model.similar(["m0050"], k=5), fitted.similar([50], k=5)
    assert mine.similar_movie_id.tolist() == [f"m{m:04d}" for m in theirs.similar_movie_id]
    assert model.recommend(["u0013"]).movie_id.tolist() == [f"m{m:04d}" for m in fitted.recommend([13]).movie_id]
    new = model.recommend_for_ratings({"m0050": 5, "m0181": 4, "m0001": 2})
    assert new.movie_id.tolist() == [f"m{m:04d}" for m in fitted.recommend_for_ratings({50: 5, 181: 4, 1: 2}).movie_id]
    lists = model.lists()["movie_similarities"]
    assert lists.movie_id.iloc[0] == "m0001" and lists.similar_movie_id.str.startswith("m").all()


def test_a_model_of_text_ids_saved_serves_by_key(db_url, keyed_model, tmp_path):
    """Saved into a catalogue of text ids that already maps other keys to the first
    integers: the model's keys get the database's integers, and serving answers by key."""
    model = keyed_model
    engine = recsql.connect(db_url)
    try:
        earlier = tmp_path / "earlier.csv"
        earlier.write_text("user_id,movie_id,value\nzed,m0050,4\nann,other,2\n")
        recsql.import_ratings(engine, earlier, ids="text", rating_scale=(1, 5))  # m0050 is integer 1 here, 'other' 2
        model_id = model.save(engine)
        with recsql.Recommender(engine) as served:
            similar = served.similar("m0050", limit=5)
            assert [s.movie_key for s in similar] == model.similar(["m0050"], k=5).similar_movie_id.tolist()
            assert [r.movie_key for r in served.recommend("u0013")] == model.recommend(["u0013"]).movie_id.tolist()
            assert served.predict("u0013", "m0181") == pytest.approx(
                model.predict(["u0013"], ["m0181"]).predicted_rating[0], abs=1e-9
            )
        with engine.connect() as conn:
            keys_listed = conn.execute(
                text("SELECT similar_movie_key FROM similar_movies WHERE movie_key = 'm0050' ORDER BY rank LIMIT 5")
            ).scalars()
            assert list(keys_listed) == model.similar(["m0050"], k=5).similar_movie_id.tolist()
        with engine.connect() as conn:  # keys the database knew keep their integers; new ones get the next
            mapped = dict(conn.execute(text("SELECT movie_key, movie_id FROM movie_keys")).all())
        assert (
            mapped["m0050"] == 1 and mapped["other"] == 2 and sorted(mapped.values()) == list(range(1, len(mapped) + 1))
        )
        loaded = recsql.load_model(engine, model_id)
        pd.testing.assert_frame_equal(loaded.similar(["m0050", "m0001"]), model.similar(["m0050", "m0001"]))
        pd.testing.assert_frame_equal(
            loaded.recommend(["u0013", "u0900"]), model.recommend(["u0013", "u0900"]), check_dtype=False
        )
    finally:
        engine.dispose()
    integers = recsql.connect(f"sqlite:///{tmp_path / 'integers.db'}")
    small = tmp_path / "s.csv"
    small.write_text(SMALL_RATINGS)
    recsql.import_ratings(integers, small)
    with pytest.raises(InvalidParameter, match="integer ids; a model fitted on text ids"):
        model.save(integers)
    assert recsql.list_models(integers) == []
    integers.dispose()


def test_a_save_blocked_by_an_applications_lock_gives_up_and_changes_nothing(postgresql_url, small_csv):
    """The application holds a lock on an output table: the save waits its lock timeout,
    says which table is held, and the model that was serving still serves."""
    engine = recsql.connect(postgresql_url, lock_timeout=1)
    application = sqlalchemy.create_engine(normalize_url(postgresql_url))
    try:
        recsql.import_ratings(engine, small_csv)
        first = _small_model().save(engine)
        before = _view_rows(engine)
        with application.begin() as held:
            held.execute(text("LOCK TABLE user_recommendations IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(recsql.errors.DatabaseUnavailable, match="user_recommendations"):
                _small_model().save(engine)
        statuses = {m.model_id: m.status for m in recsql.list_models(engine)}
        assert statuses[first] == "active" and list(statuses.values()).count("failed") == 1
        after = _view_rows(engine)
        for name in VIEWS:
            np.testing.assert_array_equal(before[name], after[name])
    finally:
        application.dispose()
        engine.dispose()

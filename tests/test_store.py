"""Model versions: one active model, views bound to it, failures that change nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import recsql
from recsql import store
from recsql.db import bulk
from recsql.errors import DatabaseUnavailable, NoActiveModel, NoRatings, UnknownMovie
from tests.helpers import readme_sql

RATINGS = "user_id,movie_id,value\n" + "\n".join(
    f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3
)


@pytest.fixture
def ratings_file(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS)
    return path


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_two_runs_leave_one_active_and_views_follow_it(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    run("train", "--features", 3, "--similar-k", 4)
    run("train", "--features", 2, "--similar-k", 3, "--metric", "cosine")
    models = recsql.list_models(engine)
    assert [m.status for m in models] == ["active", "retired"]
    assert _count(engine, "SELECT COUNT(*) FROM active_model") == 1
    assert _count(engine, "SELECT model_id FROM active_model") == models[0].model_id
    # Both runs' rows are stored; the view shows only the active run's (8 movies x 3).
    assert _count(engine, "SELECT COUNT(DISTINCT model_id) FROM movie_similarities") == 2
    assert _count(engine, "SELECT COUNT(*) FROM similar_movies") == 8 * 3
    for view in ("similar_movies", "recommended_movies", "popular_movies"):  # each row names its version
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT DISTINCT model_id FROM {view}")).scalars().all() == [models[0].model_id]
    assert _count(engine, "SELECT MAX(rank) FROM similar_movies") == 3
    assert "active" in run("models").output
    listed = json.loads(run("models", "--json").output)
    assert [m["model_id"] for m in listed] == [m.model_id for m in models]
    assert listed[0]["params"]["similar_k"] == 3
    assert listed[0]["metrics"]["train_rmse"] == models[0].metrics["train_rmse"]


def test_failed_retrain_keeps_previous_model(engine, run, ratings_file, monkeypatch):
    run("import", "ratings", ratings_file)
    run("train", "--features", 3)
    before = _count(engine, "SELECT COUNT(*) FROM movie_features")
    calls = []

    def fail_on_second_table(conn, table, columns):
        calls.append(table)
        if len(calls) == 2:
            raise DatabaseUnavailable("connection lost while writing")  # a RecsqlError
        return original(conn, table, columns)

    original = bulk.insert_columns
    monkeypatch.setattr(bulk, "insert_columns", fail_on_second_table)
    result = run("train", "--features", 4, ok=False)
    assert "connection lost while writing" in result.output
    models = recsql.list_models(engine)
    assert [m.status for m in models] == ["failed", "active"]
    assert models[0].error == "connection lost while writing"
    assert _count(engine, "SELECT COUNT(*) FROM movie_features") == before
    assert _count(engine, f"SELECT COUNT(*) FROM user_features WHERE model_id = {models[0].model_id}") == 0
    assert _count(engine, "SELECT model_id FROM active_model") == models[1].model_id


def test_a_write_error_is_the_one_recorded_even_when_cleaning_up_fails(engine, run, ratings_file, monkeypatch):
    """A lock timeout mid-write on a database that stays broken: the cleanup's own errors
    are noted on the original, never raised or recorded instead of it, and the rows the
    run left are reclaimed by the next retrain."""
    run("import", "ratings", ratings_file)
    run("train", "--features", 3)
    served = _count(engine, "SELECT COUNT(*) FROM similar_movies")
    original = bulk.insert_columns

    def time_out_on_second_table(conn, table, columns):
        if table == store.OUTPUT_TABLES[1]:
            raise OperationalError("INSERT", {}, Exception("canceling statement due to lock timeout"))
        return original(conn, table, columns)

    def broken_cleanup(*_args, **_kwargs):
        raise OperationalError("DELETE", {}, Exception("server closed the connection"))

    monkeypatch.setattr(bulk, "insert_columns", time_out_on_second_table)
    monkeypatch.setattr(store.write, "discard_outputs", broken_cleanup)  # where save_outputs finds it
    with pytest.raises(OperationalError, match="lock timeout") as raised:
        recsql.train(engine, features=4, samples=0)
    if engine.dialect.name == "postgresql":  # SQLite rolls the one write transaction back instead
        assert "deleting its rows also failed" in "".join(raised.value.__notes__)
    failed = recsql.list_models(engine)[0]
    assert failed.status == "failed" and "lock timeout" in failed.error
    assert _count(engine, "SELECT COUNT(*) FROM similar_movies") == served
    monkeypatch.undo()
    recsql.train(engine, features=2, samples=0)
    assert sum(recsql.output_counts(engine, failed.model_id).values()) == 0


def test_bad_parameters_leave_no_run(engine, run, ratings_file, tmp_path):
    run("import", "ratings", ratings_file)
    assert "features must be at least 1" in run("train", "--features", 0, ok=False).output
    assert "no such file" in run("train", "--test-file", tmp_path / "none.csv", ok=False).output
    assert "between 0 and 1" in run("train", "--test-fraction", 1.5, ok=False).output
    assert recsql.list_models(engine) == []


def test_test_fraction_is_reproducible(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    first = run("train", "--features", 2, "--test-fraction", 0.25, "--seed", 4).output
    second = run("train", "--features", 2, "--test-fraction", 0.25, "--seed", 4).output
    assert "test  RMSE" in first and first.splitlines()[-2:] == second.splitlines()[-2:]
    metrics = recsql.list_models(engine)[0].metrics
    assert metrics["n_train"] + metrics["n_test"] + metrics["n_test_skipped"] == RATINGS.count("\n")
    # What users see is measured and stored too: list coverage and the similar-movies NDCG.
    assert 0 < metrics["coverage"] <= 1 and 0 <= metrics["similar_ndcg_at_10"] <= 1


def test_nothing_to_serve_or_train(engine, run, ratings_file):
    assert "no ratings to train on" in run("train", ok=False).output
    with pytest.raises(NoRatings):
        recsql.train(engine)
    assert "no model has been trained yet" in run("similar", 1, ok=False).output
    with pytest.raises(NoActiveModel):
        recsql.Recommender(engine).similar(1)
    run("import", "ratings", ratings_file)
    run("train", "--features", 2)
    assert "unknown movie 99" in run("similar", 99, ok=False).output
    with pytest.raises(UnknownMovie) as caught:
        recsql.Recommender(engine).similar(99)
    assert caught.value.movie_id == 99


def test_recommended_movies_view(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    run("train", "--features", 2, "--recommend-n", 3)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, rank, movie_id, predicted_rating FROM recommended_movies ORDER BY user_id, rank")
        ).all()
        rated_again = conn.execute(
            text(
                "SELECT COUNT(*) FROM recommended_movies r JOIN ratings x "
                "ON x.user_id = r.user_id AND x.movie_id = r.movie_id"
            )
        ).scalar()
    assert rated_again == 0
    by_user: dict[int, list] = {}
    for r in rows:
        by_user.setdefault(r.user_id, []).append(r)
    # 12 users rate 8 movies each but skip those with (u + m) % 3 == 0: 2 or 3 unrated each.
    for user, recs in by_user.items():
        unrated = sum((user + m) % 3 == 0 for m in range(1, 9))
        assert len(recs) == min(3, unrated)
        assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
        scores = [r.predicted_rating for r in recs]
        assert scores == sorted(scores, reverse=True) and all(1 <= s <= 5 for s in scores)
    assert len(by_user) == 12
    with engine.connect() as conn:
        readme = conn.execute(text(readme_sql()["the recommendations of user 1"])).all()
    assert [(r.rank, r.movie_id) for r in readme] == [(r.rank, r.movie_id) for r in by_user[1]]


def _statuses(engine) -> list[str]:
    return [m.status for m in recsql.list_models(engine)]


def test_keep_prunes_old_models_and_rollback_works(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    for features in (2, 3, 2, 3):
        run("train", "--features", features, "--samples", 0, "--keep", 2)
    models = recsql.list_models(engine)
    assert [m.status for m in models] == ["active", "retired", "pruned", "pruned"]
    for m in models:
        rows = sum(recsql.output_counts(engine, m.model_id).values())
        assert (rows > 0) == (m.status != "pruned"), (m.model_id, m.status, rows)
    # Roll back to the retired model: the views follow it.
    newest, previous = models[0].model_id, models[1].model_id
    run("models", "activate", previous)
    assert _statuses(engine)[:2] == ["retired", "active"]
    assert _count(engine, "SELECT model_id FROM active_model") == previous
    assert _count(engine, "SELECT COUNT(*) FROM similar_movies") == 8 * 7
    with engine.connect() as conn:
        features = conn.execute(
            text(
                "SELECT COUNT(DISTINCT f.feature) FROM movie_features f JOIN active_model a ON a.model_id = f.model_id"
            )
        ).scalar()
    assert features == models[1].params["features"]
    # A pruned model, an unknown one: one clear message each, nothing changes.
    assert "only a complete model" in run("models", "activate", models[2].model_id, ok=False).output
    assert "unknown model 999" in run("models", "activate", 999, ok=False).output
    assert _count(engine, "SELECT model_id FROM active_model") == previous
    run("models", "activate", newest)
    assert "pruned 1 models" in run("models", "prune", "--keep", 1).output
    assert _statuses(engine)[:2] == ["active", "pruned"]
    assert "keep must be at least 1" in run("models", "prune", "--keep", 0, ok=False).output


def test_retrains_reuse_the_space_pruned_rows_leave(postgresql_url, tmp_path):
    """PostgreSQL: a prune VACUUMs the output tables, so retrains at a steady --keep stop
    growing them (without it each ML-100K retrain added ~11.5 MB; see bench_growth.py)."""
    engine = recsql.connect(postgresql_url)
    path = tmp_path / "r.csv"
    path.write_text(
        "user_id,movie_id,value\n"
        + "\n".join(f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 301) for m in range(1, 41) if (u + m) % 3)
    )
    recsql.import_ratings(engine, path)
    sizes = []
    for _ in range(6):
        recsql.train(engine, samples=0, features=4, keep=1)
        with engine.connect() as conn:
            sizes.append(
                conn.execute(
                    text("SELECT SUM(pg_relation_size(c)) FROM unnest(CAST(:t AS regclass[])) AS c"),
                    {"t": list(store.OUTPUT_TABLES)},
                ).scalar_one()
            )
    engine.dispose()
    # Two versions' worth of pages at most (the new one is written before the old is pruned).
    assert max(sizes[2:]) <= max(sizes[:2]), sizes


def test_prune_deletes_in_batches_and_never_the_active_model(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    run("train", "--features", 2, "--keep", 5)
    run("train", "--features", 3, "--keep", 5)
    active = _count(engine, "SELECT model_id FROM active_model")
    before = _count(engine, f"SELECT COUNT(*) FROM movie_similarities WHERE model_id = {active}")
    pruned = recsql.prune_models(engine, keep=1, batch=7)  # many small batches
    assert len(pruned) == 1 and pruned[0] != active
    assert sum(recsql.output_counts(engine, pruned[0]).values()) == 0
    assert _count(engine, f"SELECT COUNT(*) FROM movie_similarities WHERE model_id = {active}") == before
    assert recsql.prune_models(engine, keep=1) == []  # nothing left to prune


def test_models_show(engine, run, ratings_file):
    run("import", "ratings", ratings_file)
    run("train", "--features", 2, "--samples", 0, "--test-fraction", 0.25)
    model = recsql.list_models(engine)[0]
    shown = json.loads(run("models", "show", model.model_id, "--json").output)
    assert shown["model_id"] == model.model_id and shown["metrics"] == model.metrics
    assert shown["rows"] == recsql.output_counts(engine, model.model_id)
    assert shown["rows"]["movie_features"] == 8 * 2
    text_out = run("models", "show", model.model_id).output
    assert "metrics.test_rmse" in text_out and "rows.movie_similarities" in text_out
    assert "unknown model 42" in run("models", "show", 42, ok=False).output


def test_too_few_ratings_for_the_bayesian_model_is_one_clear_message(engine, run, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("user_id,movie_id,value\n1,2,5\n")
    run("import", "ratings", path)
    out = run("train", ok=False).output
    assert "could not fit 1 ratings" in out and "--samples 0" in out
    assert [m.status for m in recsql.list_models(engine)] == ["failed"]
    run("train", "--samples", 0)
    assert [m.status for m in recsql.list_models(engine)] == ["active", "pruned"]


def test_recommend_many_asks_for_the_popular_movies_once(engine, run, tmp_path, monkeypatch):
    """Every user the model does not know shares one popular list; a user who rated
    every movie still gets an empty list, not the popular movies."""
    (tmp_path / "r.csv").write_text(
        "user_id,movie_id,value\n"
        + "\n".join(
            [f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 9) for m in range(1, 7) if (u + m) % 3]
            + [f"9,{m},{m % 5 + 1}" for m in range(1, 7)]
        )
    )  # user 9 rated every movie
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    rec = recsql.Recommender(engine)
    calls = []
    popular = rec._popular
    monkeypatch.setattr(rec, "_popular", lambda limit: calls.append(limit) or popular(limit))
    answers = rec.recommend_many([1, 9, 501, 502, "nobody"], limit=3)
    assert answers[9] == [] and answers[1] and answers[1][0].source == "model"
    assert answers[501] == answers[502] == answers["nobody"] and answers[501][0].source == "popular"
    assert len(calls) == 1

"""Traffic splits: the views serve each user from their variant, by a stable hash of the
id that Python and both databases compute alike; activation ends a split; prune keeps B."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import insert, select, text, update

import recsql
from recsql.db.bulk import insert_columns
from recsql.db.tables import Model
from recsql.store import buckets
from recsql.store.split import multiplier_of
from recsql.store.write import now
from tests.conftest import SMALL_RATINGS

rng = np.random.default_rng(7)
SEQUENTIAL = np.arange(1, 10_001, dtype=np.int64)
SCATTERED = np.unique(rng.integers(-(2**62), 2**62, size=10_000, dtype=np.int64))


def _models(engine, statuses, users):
    """Model rows with the given statuses, each with a one-movie list for ``users``
    (movie = the model's id), as a retrain would leave them."""
    ids = []
    with engine.begin() as conn:
        for status in statuses:
            model_id = conn.execute(
                insert(Model)
                .values(created_at=now(), status=status, algorithm="als", params={}, n_movies=10)
                .returning(Model.id)
            ).scalar_one()
            ids.append(model_id)
            insert_columns(
                conn,
                "user_recommendations",
                {
                    "model_id": np.full(len(users), model_id),
                    "user_id": users,
                    "rank": np.ones(len(users), dtype=np.int64),
                    "movie_id": np.full(len(users), model_id),
                    "predicted_rating": np.full(len(users), 4.0),
                    "score": np.full(len(users), 1.0),
                },
            )
    return ids


def _served(url) -> dict[int, int]:
    engine = recsql.connect(url)
    with engine.connect() as conn:
        served = dict(conn.execute(text("SELECT user_id, model_id FROM recommended_movies")).all())
    engine.dispose()
    return served


def test_each_user_is_served_by_the_variant_python_computes_within_two_percent(engine, db_url):
    users = np.concatenate([SEQUENTIAL, SCATTERED])
    a, b, c = _models(engine, ("active", "retired", "retired"), users)
    split = recsql.split_traffic(engine, a, b, share=0.2)
    served = _served(db_url)
    assert len(served) == len(users)  # one list each, from one model
    variants = split.variants(users)
    assert [served[int(u)] for u in users] == [b if v == "B" else a for v in variants]
    for group in (SEQUENTIAL, SCATTERED):
        share = np.isin(group, users[variants == "B"]).mean()
        assert abs(share - 0.2) <= 0.02, share
    assert _served(db_url) == served  # stable: another connection, the same answer

    # A larger share keeps everyone B had; a new experiment (another B) draws its own users.
    wider = recsql.split_traffic(engine, a, b, share=0.3)
    in_b = {u for u, m in served.items() if m == b}
    now_b = {u for u, m in _served(db_url).items() if m == b}
    assert in_b < now_b and abs(len(now_b) / len(users) - 0.3) <= 0.02
    recsql.split_traffic(engine, a, c, share=0.2)
    in_c = {u for u, m in _served(db_url).items() if m == c}
    assert abs(len(in_b & in_c) / len(in_b) - 0.2) <= 0.03  # independent of the first draw
    history = recsql.list_splits(engine)
    assert [s.ended_by for s in history] == [
        None,
        f"replaced by split {history[0].split_id}",
        f"replaced by split {wider.split_id}",
    ]


def test_the_hash_is_the_same_arithmetic_in_sql(engine):
    users = np.concatenate([SEQUENTIAL[:500], SCATTERED[:500], [0, -1, 2**63 - 1, -(2**63)]]).astype(np.int64)
    sql = "(ABS(CAST(:u AS BIGINT) % 2147483647) + 1) * CAST(:m AS BIGINT) % 2147483647 % 10000"
    multiplier = multiplier_of(17)
    with engine.connect() as conn:
        found = [conn.execute(text(f"SELECT {sql}"), {"u": int(u), "m": multiplier}).scalar() for u in users]
    assert found == buckets(users, multiplier).tolist()


def test_a_user_model_b_has_no_list_for_keeps_model_a(engine, db_url):
    a, b = _models(engine, ("active", "retired"), SEQUENTIAL[:2000])
    split = recsql.split_traffic(engine, a, b, share=0.5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM user_recommendations WHERE model_id = :b AND user_id <= 1000"), {"b": b})
    served = _served(db_url)
    variants = split.variants(SEQUENTIAL[:2000])
    expected = {int(u): b if v == "B" and u > 1000 else a for u, v in zip(SEQUENTIAL[:2000], variants)}
    assert served == expected


def test_activation_ends_the_split_and_prune_keeps_model_b(engine, db_url, run):
    users = SEQUENTIAL[:1000]
    old, a, b = _models(engine, ("retired", "active", "retired"), users)
    recsql.split_traffic(engine, a, b, share=0.25)
    assert recsql.prune_models(engine, keep=1) == [old]  # B serves a quarter of the users: kept
    assert set(_served(db_url).values()) == {a, b}
    out = run("models", "activate", b).output
    assert "ended the traffic split of model" in out and f"model {b} is active" in out
    (ended,) = recsql.list_splits(engine)
    assert ended.ended_at is not None and ended.ended_by == f"model {b} was activated"
    assert set(_served(db_url).values()) == {b}
    assert "no split was running" in run("models", "split", "--off").output


def test_refusals_name_the_fix_and_change_nothing(engine, run):
    a, b, failed = _models(engine, ("active", "retired", "failed"), SEQUENTIAL[:10])
    for args, message in (
        ((b, a, "--share", 0.2), f"model {b} is retired: a split runs beside the active model"),
        ((a, 99, "--share", 0.2), "99"),
        ((a, failed, "--share", 0.2), f"model {failed} is failed"),
        ((a, b, "--share", 0), "between 0 and 1"),
        ((a, b, "--share", 1), "between 0 and 1"),
        ((a, a, "--share", 0.5), "two different models"),
    ):
        result = run("models", "split", *args, ok=False)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert run("models", "split", a, ok=False).exit_code == 2  # B and --share missing
    assert run("models", "split", a, b, "--off", ok=False).exit_code == 2
    assert recsql.list_splits(engine) == []


def test_train_aside_then_split_from_the_command_line(engine, run, tmp_path, db_url):
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)
    assert "kept aside, not active" in run("train", "--features", 3, "--samples", 0, "--no-activate").output
    a, b = (m.model_id for m in reversed(recsql.list_models(engine)))
    assert recsql.show_model(engine, b).status == "retired"
    assert f"model {b} serves 50.00% of the users" in run("models", "split", a, b, "--share", 0.5).output
    listed = run("models", "split", "--json").output
    assert f'"model_b": {b}' in listed
    served = _served(db_url)
    variants = dict(zip(served, recsql.list_splits(engine)[0].variants(list(served))))
    assert {u: (b if variants[u] == "B" else a) for u in served} == served
    assert set(served.values()) == {a, b}
    # A retrain that activates ends the split and says so.
    out = run("train", "--features", 2, "--samples", 0).output
    assert "ended the traffic split" in out


def test_upgrade_ends_a_split_whose_models_changed_while_downgraded(engine, run):
    a, b, c = _models(engine, ("active", "retired", "retired"), SEQUENTIAL[:10])
    recsql.split_traffic(engine, a, b, share=0.5)
    run("db", "downgrade", "0010_writer_lock")
    with engine.begin() as conn:  # what the older version's activation did: it knew no splits
        conn.execute(update(Model).where(Model.id == a).values(status="retired"))
        conn.execute(update(Model).where(Model.id == c).values(status="active"))
    run("db", "upgrade")
    (split,) = recsql.list_splits(engine)
    assert split.ended_at is not None and "downgrade" in split.ended_by
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT DISTINCT model_id FROM recommended_movies")).scalars()) == {c}
        assert conn.execute(select(Model.status).where(Model.id == b)).scalar() == "retired"


@pytest.mark.parametrize("share", [0.01, 0.5, 0.99])
def test_shares_hold_over_ten_thousand_users(share):
    inside = buckets(SEQUENTIAL, multiplier_of(5)) < round(share * 10_000)
    assert abs(inside.mean() - share) <= 0.02


def test_the_python_api_names_the_model_that_served_each_list(engine, db_url, tmp_path, run):
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)
    run("train", "--features", 3, "--samples", 0, "--no-activate")
    split = recsql.split_traffic(engine, 1, 2, share=0.5)
    users = list(range(1, 13))
    expected = {u: (2 if v == "B" else 1) for u, v in zip(users, split.variants(users))}
    with recsql.Recommender.from_url(db_url) as recommender:
        assert {u: {r.model_id for r in recommender.recommend(u, limit=3)} for u in users} == {
            u: {m} for u, m in expected.items()
        }
        many = recommender.recommend_many(users, limit=3)
        assert {u: {r.model_id for r in rows} for u, rows in many.items()} == {u: {m} for u, m in expected.items()}
        assert {r.model_id for r in recommender.recommend(999, limit=3)} == {1}  # a new user: the popular movies
        assert {p.model_id for p in recommender.popular(limit=3)} == {1}


def test_a_split_waits_for_a_running_writer_and_says_who(engine, run):
    from recsql.db.lock import writer_lock

    a, b = _models(engine, ("active", "retired"), SEQUENTIAL[:10])
    with writer_lock(engine):  # a retrain, activation or prune in progress
        result = run("models", "split", a, b, "--share", 0.5, ok=False)
        assert result.exit_code == 1 and "another recsql writer" in result.output
        assert "--wait" in run("models", "split", "--off", ok=False).output
    assert recsql.list_splits(engine) == []
    run("models", "split", a, b, "--share", 0.5, "--wait", 5)
    assert recsql.list_splits(engine)[0].running


def test_the_health_check_shows_a_running_split(engine, run):
    a, b = _models(engine, ("active", "retired"), SEQUENTIAL[:10])
    assert json.loads(run("db", "status", "--json").output)["split"] is None
    split = recsql.split_traffic(engine, a, b, share=0.25)
    status = json.loads(run("db", "status", "--json").output)
    assert status["split"]["model_b"] == b and status["split"]["share"] == 0.25 and status["healthy"]
    assert f"traffic split {split.split_id}: model {b} serves 25.00% of the users" in run("db", "status").output
    run("models", "split", "--off")
    assert "traffic split" not in run("db", "status").output

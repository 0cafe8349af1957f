"""The serving API (and the CLI on it): every kind of user, every unknown id, on both
databases; and fold-in accuracy on MovieLens 100K."""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

import recsql
from recsql import store
from recsql.algorithms.foldin import fold_in
from recsql.algorithms.solvers import make_solver
from recsql.data.files import read_ratings_file
from recsql.data.matrix import RatingMatrix, lookup_ids
from recsql.errors import DatabaseUnavailable, InvalidParameter, NoActiveModel, SchemaError, UnknownMovie, UnknownUser
from recsql.evaluation.metrics import score
from tests.conftest import Cli


@dataclass
class Served:
    engine: Engine
    run: Cli
    recommender: recsql.Recommender


@pytest.fixture(scope="module")
def served(module_db_url, seed_data, tmp_path_factory):
    """The tutorial's full data set plus user 500, who has rated every movie; trained once
    per database for the whole module."""
    run = Cli(module_db_url)
    run("import", "ratings", seed_data / "movie_ratings_data_set.csv")
    everything = tmp_path_factory.mktemp("ratings") / "all.csv"
    everything.write_text("user_id,movie_id,value\n" + "\n".join(f"500,{m},4" for m in range(1, 35)))
    run("import", "ratings", everything)
    run("import", "movies", seed_data / "movies.csv")
    run("train", "--samples", 30)
    engine = recsql.connect(module_db_url)
    yield Served(engine, run, recsql.Recommender(engine))
    engine.dispose()


@pytest.fixture
def trained(served):
    return served.recommender


@pytest.fixture
def engine(served):
    return served.engine


@pytest.fixture
def run(served):
    return served.run


def test_known_user_gets_the_stored_recommendations(trained, engine):
    recs = trained.recommend(1, limit=5)
    with engine.connect() as conn:
        stored = (
            conn.execute(text("SELECT movie_id FROM recommended_movies WHERE user_id = 1 ORDER BY rank LIMIT 5"))
            .scalars()
            .all()
        )
        rated = set(conn.execute(text("SELECT movie_id FROM ratings WHERE user_id = 1")).scalars())
    assert [r.movie_id for r in recs] == stored and {r.source for r in recs} == {"model"}
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)  # the view's order
    assert not rated & {r.movie_id for r in recs}
    assert all(r.title for r in recs)
    # Excluding more than the stored list holds falls back to ranking from the factors.
    excluded = [r.movie_id for r in trained.recommend(1, limit=10)]
    more = trained.recommend(1, limit=5, exclude=excluded)
    assert len(more) == 5 and not (set(excluded) | rated) & {r.movie_id for r in more}
    predicted = [trained.predict(1, r.movie_id) for r in more]
    assert predicted == pytest.approx([r.predicted_rating for r in more], abs=1e-4)


def test_load_warms_the_active_model(trained, engine):
    with engine.connect() as conn:
        assert trained.load() == store.active_model_id(conn)


def test_new_and_complete_users(trained):
    brand_new = trained.recommend(123456, limit=3)
    assert [r.source for r in brand_new] == ["popular"] * 3
    assert [r.movie_id for r in brand_new] == [p.movie_id for p in trained.popular(3)]
    assert trained.recommend(500) == []  # rated every movie: nothing left, no error


def test_popular_is_damped(trained, engine):
    top = trained.popular(34)
    assert [p.rank for p in top] == list(range(1, 35))
    with engine.connect() as conn:
        mean = conn.execute(text("SELECT AVG(value) FROM ratings")).scalar()
    for p in top:
        assert p.score == pytest.approx((20 * mean + p.mean_rating * p.n_ratings) / (20 + p.n_ratings), rel=1e-6)
    assert [p.score for p in top] == sorted((p.score for p in top), reverse=True)


def test_recommend_for_ratings(trained, engine):
    recs = trained.recommend_for_ratings({3: 5, 9: 4}, limit=5)
    assert len(recs) == 5 and not {3, 9} & {r.movie_id for r in recs}
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    # The order is the stored model's, readable in SQL: the similar-movie scores of the
    # rated movies, summed, times exp(0.5 * (predicted rating - mean)).
    with engine.connect() as conn:
        mean = conn.execute(text("SELECT global_mean FROM active_model")).scalar()
        lent = dict(
            conn.execute(
                text(
                    "SELECT similar_movie_id, SUM(score) FROM similar_movies WHERE movie_id IN (3, 9) "
                    "GROUP BY similar_movie_id"
                )
            ).all()
        )
    for r in recs:
        assert r.score == pytest.approx(lent.get(r.movie_id, 0.0) * np.exp(0.5 * (r.predicted_rating - mean)), rel=1e-9)
    with pytest.raises(UnknownMovie) as caught:
        trained.recommend_for_ratings({3: 5, 777: 4, 888: 1})
    assert "777, 888" in str(caught.value)


def test_saved_user_is_visible_to_sql(trained, engine):
    recs = trained.save_user(9001, {3: 5, 13: 5, 1: 4}, limit=4)
    with engine.connect() as conn:
        rows = (
            conn.execute(text("SELECT movie_id FROM recommended_movies WHERE user_id = 9001 ORDER BY rank"))
            .scalars()
            .all()
        )
    assert rows == [r.movie_id for r in recs]
    assert trained.predict(9001, recs[0].movie_id) == pytest.approx(recs[0].predicted_rating, abs=1e-6)
    trained.save_user(9001, {3: 1}, limit=4)  # saving again replaces the user
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM user_biases WHERE user_id = 9001")).scalar() == 1


def test_unknown_ids(trained):
    with pytest.raises(UnknownUser) as caught:
        trained.predict(424242, 3)
    assert caught.value.user_id == 424242
    with pytest.raises(UnknownMovie):
        trained.predict(1, 999)
    with pytest.raises(UnknownMovie):
        trained.similar(999)
    with pytest.raises(UnknownMovie):
        trained.explain(1, 999)
    with pytest.raises(UnknownUser):
        trained.explain(424242, 3)


def test_explanation_adds_up(trained, engine):
    rows = trained.explain(1, 3, limit=100)
    with engine.connect() as conn:
        rated = dict(conn.execute(text("SELECT movie_id, value FROM ratings WHERE user_id = 1")).all())
    assert {r.movie_id: r.rating for r in rows} == rated
    shares = [r.contribution for r in rows]
    assert shares == sorted(shares, reverse=True)
    with engine.connect() as conn:
        movies = store.load_movie_factors(conn, store.get_model(conn, store.active_model_id(conn)))
    ids = np.array(sorted(rated))
    idx, _ = lookup_ids(movies.movie_ids, ids)
    folded = fold_in(movies, idx, np.array([rated[i] for i in ids]))
    target, _ = lookup_ids(movies.movie_ids, np.array([3]))
    # The shares add up to the prediction (before clipping) less the mean and the movie's bias.
    unclipped = float(folded.scored_by(movies).user_terms[0] @ movies.movie_terms[target[0]])
    assert sum(shares) == pytest.approx(unclipped - movies.global_mean - movies.movie_bias[target[0]], abs=1e-9)


def test_recommender_on_the_host_applications_connection(trained, engine):
    with engine.connect() as conn:
        on_conn = recsql.Recommender(conn)
        assert [r.movie_id for r in on_conn.similar(3, 3)] == [r.movie_id for r in trained.similar(3, 3)]
        on_conn.save_user(9002, {3: 5})
        conn.rollback()  # the host application's transaction decides
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM user_biases WHERE user_id = 9002")).scalar() == 0


def test_empty_database(db_url):
    rec = recsql.Recommender.from_url(db_url)
    for call in (
        lambda: rec.similar(1),
        lambda: rec.recommend(1),
        lambda: rec.popular(),
        lambda: rec.recommend_for_ratings({1: 5}),
    ):
        with pytest.raises(NoActiveModel):
            call()


def test_cli(trained, run):
    out = run("recommend", 1, "--limit", 3).output
    assert len([line for line in out.splitlines() if line[:4].strip().isdigit()]) == 3
    assert "most popular movies instead" in run("recommend", 777777).output
    assert "The Sheriff" in run("recommend", "--rate", "3=5", "--rate", "13=5", "--limit", 34).output
    assert "unknown movie 999" in run("recommend", "--rate", "999=5", ok=False).output
    assert "expected MOVIE_ID=RATING" in run("recommend", "--rate", "3:5", ok=False).output
    assert "nothing to recommend" in run("recommend", 500).output
    assert "predicted rating" in run("explain", 1, 3).output
    assert float(run("predict", 1, 3).output) == pytest.approx(trained.predict(1, 3), abs=1e-4)
    assert "unknown user 31337" in run("predict", 31337, 3, ok=False).output
    assert len(run("popular", "--limit", 4).output.strip().splitlines()) == 5
    run("recommend", "--rate", "3=5", "--save", 4242)
    assert trained.recommend(4242, limit=1)[0].source == "model"
    as_json = json.loads(run("recommend", 1, "--limit", 3, "--json").output)
    assert as_json == [dataclasses.asdict(r) for r in trained.recommend(1, limit=3)]
    newcomer = json.loads(run("recommend", 777777, "--limit", 2, "--json").output)
    assert [r["source"] for r in newcomer] == ["popular", "popular"]
    assert json.loads(run("recommend", 500, "--json").output) == []
    popular = [dataclasses.asdict(p) for p in trained.popular(4)]
    assert json.loads(run("popular", "--limit", 4, "--json").output) == popular
    assert json.loads(run("similar", 3, "--json").output) == [dataclasses.asdict(m) for m in trained.similar(3)]


def test_fold_in_is_as_good_as_retraining(ml100k):
    """Users held out of training, folded in from their first 10 ratings, scored on the
    rest: as accurate (within 0.03) as a model retrained with those 10 ratings."""
    data = read_ratings_file(ml100k / "u.data")
    rng = np.random.default_rng(0)
    users = np.unique(data.user_id)
    new = np.isin(data.user_id, rng.choice(users, size=len(users) // 10, replace=False))
    first = data[new].sort_values(["user_id", "rated_at"]).groupby("user_id").head(10)
    rest = data[new].drop(first.index)
    old = data[~new]
    base = RatingMatrix.from_triples(old.user_id, old.movie_id, old.value)
    factors = make_solver("als").fit(base)
    errors = []
    for user, given in first.groupby("user_id"):
        given = given[np.isin(given.movie_id, factors.movie_ids)]
        later = rest[(rest.user_id == user) & np.isin(rest.movie_id, factors.movie_ids)]
        g, _ = lookup_ids(factors.movie_ids, given.movie_id.to_numpy())
        r, _ = lookup_ids(factors.movie_ids, later.movie_id.to_numpy())
        user = fold_in(factors, g, given.value.to_numpy()).scored_by(factors)
        errors.append(user.predict(np.zeros(len(r), dtype=np.int64), r) - later.value.to_numpy())
    folded_rmse = float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    both = pd.concat([old, first])
    retrained = make_solver("als").fit(RatingMatrix.from_triples(both.user_id, both.movie_id, both.value))
    retrained_rmse = score(retrained, RatingMatrix.from_triples(rest.user_id, rest.movie_id, rest.value)).rmse
    assert folded_rmse <= retrained_rmse + 0.03, (folded_rmse, retrained_rmse)


# ---------------------------------------------------------------------- for web applications (issue 11)


def _unreachable() -> recsql.Recommender:
    """A Recommender whose every query would fail: an argument it refuses with
    InvalidParameter was refused before any query ran."""
    from sqlalchemy import create_engine

    from tests.conftest import ROOT

    return recsql.Recommender(create_engine(f"sqlite:///{ROOT / 'no-such-directory' / 'recsql.db'}"))


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.similar(1, limit=-1),
        lambda r: r.similar(1, limit=0),
        lambda r: r.similar(1, limit=1001),
        lambda r: r.similar(1, limit=2.0),
        lambda r: r.similar(1, limit=True),
        lambda r: r.similar(1, limit="5"),
        lambda r: r.similar(""),
        lambda r: r.similar(1.0),
        lambda r: r.similar(True),
        lambda r: r.similar(2**63),
        lambda r: r.similar_many("12"),
        lambda r: r.similar_many([1, 2.0]),
        lambda r: r.similar_many(range(1001)),
        lambda r: r.recommend(None),
        lambda r: r.recommend(1, exclude=[7.5]),
        lambda r: r.recommend(1, limit=0),
        lambda r: r.recommend_many([1], limit=1001),
        lambda r: r.popular(0),
        lambda r: r.explain(1, 3, limit=0),
        lambda r: r.predict(1, 3.0),
        lambda r: r.movie(None),
        lambda r: r.save_user("9", {1: 5}),
        lambda r: r.recommend_for_ratings({}),
        lambda r: r.recommend_for_ratings([(1, 5)]),
        lambda r: r.recommend_for_ratings({1: float("nan")}),
        lambda r: r.recommend_for_ratings({1: float("inf")}),
        lambda r: r.recommend_for_ratings({1: "5"}),
        lambda r: r.recommend_for_ratings({1: True}),
        lambda r: r.recommend_for_ratings({"": 5}),
        lambda r: r.recommend_for_ratings({1: 5}, limit=0),
        lambda r: r.save_user(9, {1: None}),
    ],
)
def test_arguments_are_checked_before_any_query(call):
    with pytest.raises(InvalidParameter) as caught:
        call(_unreachable())
    assert caught.value.http_status == 400


def test_ratings_must_be_on_the_models_scale(trained, engine):
    with engine.connect() as conn:
        low, high = store.get_model(conn, store.active_model_id(conn)).clip
    for off in (high + 45, low - 1):
        with pytest.raises(InvalidParameter, match=f"from {low:g} to {high:g}"):
            trained.recommend_for_ratings({3: 5, 9: off})
        with pytest.raises(InvalidParameter):
            trained.save_user(9004, {3: off})
    assert trained.recommend_for_ratings({3: high, 9: low}, limit=2)  # the ends are on the scale
    assert np.int64(3) in {r.movie_id for r in trained.similar(np.int64(9), limit=34)}  # numpy ints are ints


def test_similar_many_is_one_query_with_the_single_answers(trained, engine):
    with _statements(engine) as seen:
        many = trained.similar_many([9, 3, 9, 13], limit=4)
    assert len(seen) == 1 and list(many) == [9, 3, 13]
    assert many == {m: trained.similar(m, limit=4) for m in (9, 3, 13)}
    assert trained.similar_many([]) == {}
    with pytest.raises(UnknownMovie) as caught:
        trained.similar_many([3, 777, 888])
    assert "unknown movie 777, 888" in str(caught.value)


def test_recommend_many_gives_the_single_answers(trained, engine):
    with _statements(engine) as seen:
        many = trained.recommend_many([1, 2], limit=5)
    assert len(seen) == 1 and many == {u: trained.recommend(u, limit=5) for u in (1, 2)}
    users = [1, 123456, 500, 2]  # known, new (popular movies), rated everything (nothing)
    for limit in (3, 20):  # 20: beyond the 10 stored per user, ranked from the factors
        many = trained.recommend_many(users, limit=limit)
        assert list(many) == users and many == {u: trained.recommend(u, limit=limit) for u in users}
    assert many[123456][0].source == "popular" and many[500] == [] and len(many[1]) == 20
    assert trained.recommend_many([]) == {}


def test_recommender_on_a_url_a_session_or_a_connection(served, trained, engine, monkeypatch):
    from sqlalchemy.orm import Session, scoped_session, sessionmaker

    disposed = []
    monkeypatch.setattr(engine, "dispose", lambda: disposed.append(engine))
    expected = [r.movie_id for r in trained.similar(3, 3)]
    with Session(engine) as session:
        with recsql.Recommender(session) as on_session:
            assert [r.movie_id for r in on_session.similar(3, 3)] == expected
            on_session.save_user(9005, {3: 5})
            assert on_session.recommend(9005, limit=2)[0].source == "model"  # its own transaction sees it
            session.rollback()  # the session's owner decides
    factory = scoped_session(sessionmaker(engine))
    with recsql.Recommender(factory) as on_scoped:
        assert on_scoped.recommend(9005, limit=1)[0].source == "popular"
        assert [r.movie_id for r in on_scoped.similar(3, 3)] == expected
    factory.remove()
    with engine.connect() as conn, recsql.Recommender(conn) as on_conn:
        assert [r.movie_id for r in on_conn.similar(3, 3)] == expected
    with recsql.Recommender(engine):
        pass
    assert disposed == []  # an engine passed in stays the caller's
    with recsql.Recommender(served.run.url) as on_url:
        assert [r.movie_id for r in on_url.similar(3, 3)] == expected
        own = on_url.bind
        monkeypatch.setattr(own, "dispose", lambda: disposed.append(own))
    assert disposed == [own]
    with pytest.raises(InvalidParameter):
        recsql.Recommender(42)


def test_database_failures_are_recsql_errors(db_url):
    """A database recsql never set up: SchemaError (500); one that cannot be reached:
    DatabaseUnavailable (503); either way a message, never a driver traceback."""
    from sqlalchemy import create_engine

    bare = create_engine(db_url)
    try:
        with pytest.raises(SchemaError, match="recsql db upgrade"):
            recsql.Recommender(bare).similar(1)
    finally:
        bare.dispose()
    with pytest.raises(DatabaseUnavailable) as caught:
        _unreachable().recommend_many([1, 2])
    assert caught.value.http_status == 503


@contextmanager
def _statements(engine: Engine):
    """The queries run on ``engine`` inside the block (not SQLite's BEGIN, nor the call's
    timeout settings: PRAGMA busy_timeout on SQLite, one set_config on PostgreSQL)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        settings = ("PRAGMA busy_timeout", "SELECT old.*, set_config", "SELECT set_config")
        if statement != "BEGIN" and not statement.startswith(settings):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)

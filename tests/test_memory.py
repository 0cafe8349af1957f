"""recsql.fit: the model and lists of a DataFrame in memory, as `recsql train` would
store them from the same ratings, with predictions for any pairs (unknown ones flagged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import recsql
from recsql.errors import InvalidParameter


def _random_ratings(seed: int, n: int, users: int, movies: int) -> pd.DataFrame:
    """``n`` ratings from 1 to 5 of random (user, movie) pairs, reproducibly."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"user_id": rng.integers(1, users, n), "movie_id": rng.integers(1, movies, n), "value": rng.integers(1, 6, n)}
    )


@pytest.fixture(scope="module")
def u1(ml100k):
    return pd.read_csv(ml100k / "u1.base", sep="\t", names=["userId", "movieId", "rating", "timestamp"])


def test_fit_in_memory_is_the_model_train_stores(tmp_path, ml100k, u1):
    """The same ratings, the same defaults and seed: the same RMSE, predictions and lists."""
    engine = recsql.connect(f"sqlite:///{tmp_path / 'r.db'}")
    recsql.import_ratings(engine, ml100k / "u1.base")
    trained = recsql.train(engine)
    model = recsql.fit(u1, columns={"user": "userId", "movie": "movieId", "rating": "rating"})
    assert model.fitted.items is not None and trained.params["item_model"] == model.fitted.items.facts()["item_model"]
    users, movies = u1.userId.to_numpy()[:5000], u1.movieId.to_numpy()[:5000]
    predicted = model.predict(users, movies)
    assert predicted.known.all()
    rmse = float(np.sqrt(np.mean((predicted.predicted_rating - u1.rating[:5000]) ** 2)))
    with recsql.Recommender(engine) as served:
        for i, (user, movie) in enumerate(zip(users[:50], movies[:50])):  # rows come in input order
            assert served.predict(int(user), int(movie)) == pytest.approx(predicted.predicted_rating[i], abs=1e-6)
        for movie in (1, 50, 181, 1000):
            listed = model.similar([movie], k=10)
            assert listed.similar_movie_id.tolist() == [s.movie_id for s in served.similar(movie, limit=10)]
        for user in (1, 13, 405, 943):
            mine = model.recommend([user], n=10)
            assert mine.movie_id.tolist() == [r.movie_id for r in served.recommend(user, limit=10)]
            assert mine["rank"].tolist() == list(range(1, 11))
    assert rmse < 0.9 and model.metrics["train_rmse"] == pytest.approx(trained.metrics["train_rmse"], abs=1e-12)
    assert model.params == trained.params  # the same plan and settings, as a retrain records them


def test_unknown_ids_get_the_mean_and_a_flag_not_an_exception():
    ratings = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "movie_id": [10, 20, 10, 30, 20], "rating": [5, 3, 4, 2, 1]})
    model = recsql.fit(ratings, samples=0, features=2, max_iterations=3, item_regularization=10.0)
    got = model.predict([1, 99, 1], [10, 10, 77])
    assert got.known.tolist() == [True, False, False]
    assert got.predicted_rating[1] == got.predicted_rating[2] == pytest.approx(model.fitted.factors.global_mean)
    assert model.recommend([99]).empty and model.similar([77]).empty
    assert set(model.similar([10], k=2).similar_movie_id) <= {20, 30}


def test_what_cannot_be_fitted_is_refused_with_one_message():
    ratings = pd.DataFrame({"user_id": [1, 2], "movie_id": [10, 20], "value": [4.0, 5.0]})
    cases = [
        (lambda: recsql.fit({"user": 1}), "must be a pandas DataFrame, an Arrow table or three arrays"),
        (lambda: recsql.fit(ratings.rename(columns={"value": "stars"})), "no column value"),
        (lambda: recsql.fit(ratings, columns={"item": "movie_id"}), "unknown column role item"),
        (lambda: recsql.fit(ratings.assign(user_id=[1, None])), "holds a missing id"),
        (lambda: recsql.fit(ratings, samples=0).predict(["a"], [10]), "fitted on integer ids"),
        (lambda: recsql.fit(ratings.assign(value=[4.0, np.nan])), "not a finite number"),
        (lambda: recsql.fit(ratings.iloc[:0]), "no ratings"),
        (lambda: recsql.fit(ratings, speed=3), "unknown option speed"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidParameter, match=message):
            call()


def test_predicting_a_hundred_thousand_pairs_is_one_vectorised_call(u1):
    """Not a timing test (scripts/bench_memory.py measures speed): the answer for 100,000
    pairs is one frame in input order, equal to predicting them one at a time."""
    model = recsql.fit(u1.rename(columns={"userId": "user_id", "movieId": "movie_id"}), samples=0, max_iterations=2)
    rng = np.random.default_rng(0)
    users, movies = rng.integers(1, 1000, 100_000), rng.integers(1, 1700, 100_000)
    got = model.predict(users, movies)
    assert len(got) == 100_000 and (got.user_id.to_numpy() == users).all()
    assert (got.movie_id.to_numpy() == movies).all() and 0 < got.known.sum() < 100_000  # both kinds of pair
    framed = model.predict(pd.DataFrame({"u": users, "m": movies}), columns={"user": "u", "movie": "m"})
    pd.testing.assert_frame_equal(framed, got)  # a DataFrame of pairs, as the two arrays
    for i in (0, 17, 99_999):
        one = model.predict(users[i], movies[i])
        assert one.predicted_rating[0] == got.predicted_rating[i] and one.known[0] == got.known[i]


def test_evaluate_takes_dataframes_as_it_takes_files(ml100k, u1):
    """The same split from DataFrames or from files: the same figures."""
    names = ["user_id", "movie_id", "rating", "timestamp"]
    test = pd.read_csv(ml100k / "u1.test", sep="\t", names=names)
    frames = recsql.evaluate(train=u1.set_axis(names, axis=1), test=test, samples=0, max_iterations=3).mean
    files = recsql.evaluate(
        train_file=ml100k / "u1.base", test_file=ml100k / "u1.test", samples=0, max_iterations=3
    ).mean
    for metric in ("test_rmse", "ndcg_at_10", "similar_ndcg_at_10", "coverage"):
        assert frames[metric] == pytest.approx(files[metric], abs=1e-9), metric


def test_evaluate_on_a_dataframe_holds_out_a_share_or_refuses_clearly():
    ratings = _random_ratings(seed=1, n=3_000, users=60, movies=80)
    held = recsql.evaluate(train=ratings, test_fraction=0.2, samples=0, features=3, max_iterations=2).mean
    assert 0 < held["n_test"] + held["n_test_skipped"] < 3_000 * 0.3
    for given, message in [
        ({}, "either test"),
        ({"test": ratings, "test_fraction": 0.2}, "either test"),
        ({"test_fraction": 0.2, "train_file": "x.csv"}, "not train_file"),
        ({"test_fraction": 1.5}, "between 0 and 1"),
        ({"test_fraction": 0.2, "speed": 1}, "unknown option speed"),
    ]:
        with pytest.raises(InvalidParameter, match=message):
            recsql.evaluate(train=ratings, **given)


def test_new_people_are_folded_in_from_a_frame_and_lists_may_keep_rated_movies():
    ratings = _random_ratings(seed=4, n=4_000, users=80, movies=60)
    model = recsql.fit(ratings, samples=0, features=3, max_iterations=3)
    people = pd.DataFrame({"person": [7, 7, 8, 9], "item": [1, 2, 3, 5000], "stars": [5, 4, 1, 5]})
    got = model.recommend_for_ratings(people, n=5, columns={"user": "person", "movie": "item", "rating": "stars"})
    by_person = {p: rows for p, rows in got.groupby("user_id")}
    assert set(by_person) == {7, 8, 9} and all(len(rows) == 5 for rows in by_person.values())
    assert not {1, 2} & set(by_person[7].movie_id) and 3 not in set(by_person[8].movie_id)  # rated: left out
    assert (by_person[9].source == "popular").all()  # knew no movie the model knows
    popular = model.lists()["movie_popularity"]
    assert by_person[9].movie_id.tolist() == popular.movie_id.head(5).tolist()
    one = model.recommend_for_ratings({1: 5, 2: 4}, n=5)
    assert one.movie_id.tolist() == by_person[7].movie_id.tolist()  # one person alone, the same list
    with pytest.raises(InvalidParameter, match="from 1 to 5"):
        model.recommend_for_ratings({1: 50})
    user = int(ratings.user_id.iloc[0])
    rated = set(ratings.movie_id[ratings.user_id == user])
    everything = model.recommend([user], n=60, exclude_rated=False)
    assert len(everything) == model.movie_ids.size and rated <= set(everything.movie_id)
    unrated = model.recommend([user], n=60)
    assert not rated & set(unrated.movie_id) and len(unrated) == model.movie_ids.size - len(rated)
    assert model.recommend([user])["rank"].tolist() == list(range(1, 11))  # the stored list


def test_an_arrow_table_or_three_arrays_fit_as_the_dataframe_does():
    pa = pytest.importorskip("pyarrow")
    frame = _random_ratings(seed=5, n=2_000, users=50, movies=40)
    quick = {"samples": 0, "features": 3, "max_iterations": 2}
    expected = recsql.fit(frame, **quick).predict(frame.user_id[:100], frame.movie_id[:100])
    for given in (pa.Table.from_pandas(frame), (frame.user_id.to_numpy(), frame.movie_id.to_list(), frame.value)):
        got = recsql.fit(given, **quick).predict(frame.user_id[:100], frame.movie_id[:100])
        pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(InvalidParameter, match="differ in length"):
        recsql.fit((frame.user_id, frame.movie_id[:5], frame.value))

"""evaluate's time splits and baselines: the latest share of all ratings or each user's
latest ratings held out (from a DataFrame, a file or the database alike), and the most
popular movies and EASE scored beside the model on the same split, cross-checked
against plain numpy implementations of both."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import recsql
from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter
from recsql.evaluation.baselines import EASE_LAMBDAS, baseline_lists
from recsql.evaluation.splits import split_by_time, split_last_n

NAMES = ["user_id", "movie_id", "rating", "timestamp"]
QUICK = {"samples": 0, "max_iterations": 3, "item_regularization": 250.0}  # where the model's quality is not the point


def _timed(n_users=40, n_movies=30, per_user=12, seed=3):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    movies = np.concatenate([rng.choice(n_movies, per_user, replace=False) + 1 for _ in range(n_users)])
    times = rng.integers(0, 50, len(users)).astype(float)  # many ties, as MovieLens' seconds have
    values = rng.integers(1, 6, len(users)).astype(float)
    matrix = RatingMatrix.from_triples(users, movies, values)
    return matrix, matrix.cell_times(users, movies, times)


def test_a_time_split_scores_the_latest_share_on_a_fit_of_the_rest():
    matrix, times = _timed()
    train, test = split_by_time(matrix, times, 0.25, seed=1)
    assert test.nnz == round(0.25 * matrix.nnz) and train.nnz + test.nnz == matrix.nnz
    at = {(u, m): t for u, m, t in zip(*matrix.triples()[:2], times)}
    train_times = [at[p] for p in zip(*train.triples()[:2])]
    test_times = [at[p] for p in zip(*test.triples()[:2])]
    assert max(train_times) <= min(test_times)  # only ties of the cut's second are shared out, at random
    again = split_by_time(matrix, times, 0.25, seed=1)[1]
    assert np.array_equal(again.triples()[0], test.triples()[0]) and np.array_equal(
        again.triples()[1], test.triples()[1]
    )


def test_leave_last_n_holds_out_each_users_latest_ratings():
    matrix, times = _timed()
    users, movies, _ = matrix.triples()
    few = users == 1  # a user with no more ratings than last_n stays whole in training
    matrix = matrix.subset(~few | (np.cumsum(few) <= 3))
    times = times[~few | (np.cumsum(few) <= 3)]
    train, test = split_last_n(matrix, times, last_n=3, seed=0)
    held = pd.DataFrame({"user": test.triples()[0], "movie": test.triples()[1]})
    assert 1 not in set(held.user) and (held.groupby("user").size() == 3).all()
    assert set(held.user) == set(range(2, 41))
    frame = pd.DataFrame({"user": matrix.triples()[0], "movie": matrix.triples()[1], "time": times})
    for user, rows in frame.groupby("user"):
        if user == 1:
            continue
        kept = rows[~rows.movie.isin(held[held.user == user].movie)]
        assert rows[rows.movie.isin(held[held.user == user].movie)].time.min() >= kept.time.max()


def test_a_re_rated_pair_takes_its_latest_time():
    matrix = RatingMatrix.from_triples(np.array([1, 1, 1]), np.array([5, 5, 6]), np.array([2.0, 4.0, 3.0]))
    times = matrix.cell_times(np.array([1, 1, 1]), np.array([5, 5, 6]), np.array([10.0, 30.0, 20.0]))
    assert times.tolist() == [30.0, 20.0]


def test_the_same_time_split_from_a_frame_a_file_and_the_database(db_url, ml100k):
    frame = pd.read_csv(ml100k / "u1.test", sep="\t", names=NAMES)
    engine = recsql.connect(db_url)
    try:
        recsql.import_ratings(engine, ml100k / "u1.test")
        for split in ({"split": "time", "test_fraction": 0.2}, {"split": "leave-last-n", "last_n": 2}):
            got = [
                recsql.evaluate(train=frame, **split, **QUICK).mean,
                recsql.evaluate(train_file=ml100k / "u1.test", **split, **QUICK).mean,
                recsql.evaluate(engine, **split, **QUICK).mean,
            ]
            for metric in ("test_rmse", "ndcg_at_10", "similar_ndcg_at_10", "n_test"):
                assert got[0][metric] == got[1][metric] == pytest.approx(got[2][metric], abs=1e-12), (split, metric)
        with engine.begin() as conn:
            conn.execute(text("UPDATE ratings SET rated_at = NULL WHERE id IN (SELECT MIN(id) FROM ratings)"))
        with pytest.raises(InvalidParameter, match="1 of 20000 ratings have no time"):
            recsql.evaluate(engine, split="time", test_fraction=0.2)
    finally:
        engine.dispose()


def test_a_split_that_cannot_be_made_is_refused_with_one_message(ml100k, tmp_path):
    frame = pd.read_csv(ml100k / "u1.test", sep="\t", names=NAMES)
    cases = [
        ({"train": frame.drop(columns="timestamp"), "split": "time", "test_fraction": 0.2}, "20000 of 20000"),
        ({"train": frame, "split": "time"}, "latest --test-fraction"),
        ({"train": frame, "split": "leave-last-n", "test_fraction": 0.2}, "not --test-fraction"),
        ({"train": frame, "split": "leave-last-n", "last_n": 10_000}, "no user has more than 10000"),
        ({"train": frame, "split": "random", "last_n": 2, "test_fraction": 0.2}, "goes with --split leave-last-n"),
        ({"train": frame, "split": "next", "test_fraction": 0.2}, "split must be one of"),
        ({"train": frame, "test_fraction": 0.2, "baselines": ["popular", "svd"]}, "unknown baseline svd"),
        (
            {"train_file": ml100k / "u1.test", "split": "time", "test_fraction": 0.2, "source": tmp_path / "s.toml"},
            "import the source",
        ),
        ({"train": frame.assign(timestamp="noon"), "split": "time", "test_fraction": 0.2}, "neither a number"),
        ({"train_file": frame, "test_fraction": 0.2}, "not a DataFrame: give ratings in memory as train="),
    ]
    for given, message in cases:
        with pytest.raises(InvalidParameter, match=message):
            recsql.evaluate(**given)


# ---------------------------------------------------------------------- baselines against plain numpy


def _ndcg(top: np.ndarray, relevant: list[set[int]], k: int = 10) -> float:
    """NDCG@k by its definition, a user at a time."""
    gains = []
    for listed, wanted in zip(top, relevant):
        dcg = sum(1 / np.log2(rank + 2) for rank, movie in enumerate(listed[:k]) if movie in wanted)
        ideal = sum(1 / np.log2(rank + 2) for rank in range(min(len(wanted), k)))
        gains.append(dcg / ideal)
    return float(np.mean(gains))


def _reference(train: RatingMatrix, test: RatingMatrix, lam: float) -> dict[str, np.ndarray | float]:
    """Most popular and EASE, dense, in float64, and the NDCG@10 of their top 10s."""
    x = np.zeros(train.shape)
    x[train.rows, train.cols] = 1.0
    counts = x.sum(axis=0)
    p = np.linalg.inv(x.T @ x + lam * np.eye(train.n_movies))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    test_users, test_movies, values = test.triples()
    rows = np.searchsorted(train.user_ids, test_users)
    cols = np.searchsorted(train.movie_ids, test_movies)
    known = (train.user_ids[np.minimum(rows, train.n_users - 1)] == test_users) & (
        train.movie_ids[np.minimum(cols, train.n_movies - 1)] == test_movies
    )
    liked = known & (values >= 4)
    users = np.unique(rows[liked])
    relevant = [set(cols[liked & (rows == u)]) for u in users]
    out: dict[str, np.ndarray | float] = {"users": users}
    for name, scores in (("popular", np.broadcast_to(counts, x.shape).copy()), ("ease", x @ b)):
        scores[x > 0] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        out[name] = top
        out[f"{name}_ndcg"] = _ndcg(top[users], relevant)
    out["ease_similar"] = np.argsort(-np.where(np.eye(train.n_movies) > 0, -np.inf, b), axis=1, kind="stable")[:, :20]
    return out


def test_the_baselines_are_what_plain_numpy_makes_of_the_split(ml100k):
    names = ["user_id", "movie_id", "value", "t"]
    train_frame = pd.read_csv(ml100k / "u1.base", sep="\t", names=names)
    test_frame = pd.read_csv(ml100k / "u1.test", sep="\t", names=names)
    result = recsql.evaluate(train=train_frame, test=test_frame, baselines=("popular", "ease"), samples=0)
    train = RatingMatrix.from_triples(train_frame.user_id, train_frame.movie_id, train_frame.value)
    test = RatingMatrix.from_triples(test_frame.user_id, test_frame.movie_id, test_frame.value)
    lam = result.baseline_mean("ease")["ease_lambda"]
    assert lam in EASE_LAMBDAS
    reference = _reference(train, test, lam)
    for name in ("popular", "ease"):
        mine = baseline_lists(name, train, n=10, k=20)
        same = np.mean([set(a) == set(b) for a, b in zip(mine.recommended, reference[name])])
        assert same > 0.97, (name, same)  # float32 against float64, and ties of equal counts, part the rest
        assert result.baseline_mean(name)["ndcg_at_10"] == pytest.approx(reference[f"{name}_ndcg"], abs=3e-3)
    ease = baseline_lists("ease", train, n=10, k=20)
    assert np.mean([set(a) == set(b) for a, b in zip(ease.similar.indices, reference["ease_similar"])]) > 0.97
    model, popular, best = result.mean, result.baseline_mean("popular"), result.baseline_mean("ease")
    assert model["ndcg_at_10"] > best["ndcg_at_10"] > popular["ndcg_at_10"]  # on ML-100K u1, as measured
    assert "test_rmse" not in popular and popular["coverage"] < best["coverage"]


def test_eases_lambda_never_sees_the_test_and_a_large_catalogue_refuses_it(ml100k, monkeypatch):
    names = ["user_id", "movie_id", "value", "t"]
    train = pd.read_csv(ml100k / "u1.base", sep="\t", names=names)
    test = pd.read_csv(ml100k / "u1.test", sep="\t", names=names)
    chosen = {
        recsql.evaluate(train=train, test=part, baselines=("ease",), **QUICK).baseline_mean("ease")["ease_lambda"]
        for part in (test, test[test.value >= 4], test.iloc[::3])
    }
    assert len(chosen) == 1
    monkeypatch.setattr("recsql.evaluation.baselines.ITEM_MODEL_LIMIT", 1_000)
    with pytest.raises(InvalidParameter, match="1650 movies is more than 1000"):
        recsql.evaluate(train=train, test=test, baselines=("ease",), **QUICK)


def test_the_cli_scores_a_time_split_beside_the_baselines(ml100k, tmp_path):
    from tests.conftest import Cli

    run = Cli(f"sqlite:///{tmp_path / 'unused.db'}")
    refused = run(
        "evaluate", "--train", ml100k / "u1.test", "--split", "leave-last-n", "--test-fraction", "0.2", ok=False
    )
    assert "holds out each user's latest --last-n, not --test-fraction" in refused.output
    out = run(
        "evaluate",
        "--train",
        str(ml100k / "u1.test"),
        "--split",
        "time",
        "--test-fraction",
        "0.2",
        "--baselines",
        "popular,ease",
        "--samples",
        "0",
        "--max-iterations",
        "3",
        "--item-regularization",
        "250",
        "--json",
    )
    document = json.loads(out.stdout)
    assert set(document["baselines"]) == {"popular", "ease"}
    direct = recsql.evaluate(
        train_file=ml100k / "u1.test", split="time", test_fraction=0.2, baselines=("popular", "ease"), **QUICK
    )
    assert document["mean"]["ndcg_at_10"] == pytest.approx(direct.mean["ndcg_at_10"])
    assert document["baselines"]["ease"]["mean"]["ndcg_at_10"] == pytest.approx(
        direct.baseline_mean("ease")["ndcg_at_10"]
    )

"""The default solver: batched ALS against its per-row reference, the Bayesian sampler's
determinism and accuracy, and predictions reproduced by the README's SQL."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import recsql
from recsql.algorithms.solvers import AlternatingLeastSquares, make_solver
from recsql.data.matrix import RatingMatrix
from recsql.data.ratings import ratings_from_file
from recsql.evaluation.metrics import score
from tests.helpers import low_rank_ratings, readme_sql


def test_batched_als_matches_reference():
    matrix = low_rank_ratings(n_users=25, n_movies=15)
    fast = AlternatingLeastSquares(features=3, samples=0, regularization=0.05).fit(matrix)
    slow = AlternatingLeastSquares(features=3, samples=0, regularization=0.05, reference=True).fit(matrix)
    for name in ("user_factors", "movie_factors", "user_bias", "movie_bias"):
        # The batched products run in float32; the reference is float64 throughout.
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), atol=1e-4)


def test_sampler_is_deterministic_per_seed():
    matrix = low_rank_ratings()
    a = AlternatingLeastSquares(features=2, samples=20, seed=3).fit(matrix)
    b = AlternatingLeastSquares(features=2, samples=20, seed=3).fit(matrix)
    c = AlternatingLeastSquares(features=2, samples=20, seed=4).fit(matrix)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    assert not np.allclose(a.movie_bias, c.movie_bias)


def test_predictions_are_clipped_to_the_training_scale():
    matrix = RatingMatrix.from_triples([1, 1, 2, 2, 3], [1, 2, 1, 3, 2], [1, 5, 5, 1, 5])
    factors = AlternatingLeastSquares(features=2, samples=10).fit(matrix)
    rows, cols = np.meshgrid(np.arange(3), np.arange(3))
    pred = factors.predict(rows.ravel(), cols.ravel())
    assert pred.min() >= 1 and pred.max() <= 5
    assert factors.clip == (1.0, 5.0)


def test_unknown_parameters_are_refused():
    with pytest.raises(recsql.RecsqlError, match="does not take samples"):
        make_solver("cg", samples=5)


def test_accuracy_on_movielens_100k(ml100k):
    """Guards the benchmark: mean test RMSE over u1..u5 must stay at or below 0.915."""
    rmse = []
    for k in range(1, 6):
        train, test = ratings_from_file(ml100k / f"u{k}.base"), ratings_from_file(ml100k / f"u{k}.test")
        rmse.append(score(make_solver("als").fit(train), test).rmse)
    assert np.mean(rmse) <= 0.915, rmse
    assert rmse[0] <= 0.925, rmse


def test_stored_lists_rank_on_movielens_100k(ml100k):
    """Floors for the lists applications show (u1): the top-10 recommendations' NDCG@10
    and the similar movies' "because you rated" NDCG@10, while RMSE stays where it was."""
    metrics = recsql.evaluate(train_file=ml100k / "u1.base", test_file=ml100k / "u1.test").mean
    assert metrics["ndcg_at_10"] >= 0.35, metrics
    assert metrics["similar_ndcg_at_10"] >= 0.35, metrics
    assert metrics["test_rmse"] <= 0.8925, metrics


def test_sql_reproduces_predictions(engine, run, seed_data):
    run("import", "ratings", seed_data / "movie_ratings_data_set.csv")
    run("train")  # the default solver: biases, clipping, compressed Bayesian factors
    with engine.connect() as conn:
        predicted = conn.execute(text(readme_sql()["the predicted rating of user 1 for movie 3"])).scalar()
        # The same prediction for every training rating, in SQL, gives the stored train RMSE.
        per_rating = conn.execute(
            text(
                "SELECT r.value, a.global_mean + ub.bias + mb.bias + SUM(u.value * m.value) AS raw, "
                "a.rating_min, a.rating_max "
                "FROM ratings r JOIN active_model a ON 1 = 1 "
                "JOIN user_biases ub ON ub.model_id = a.model_id AND ub.user_id = r.user_id "
                "JOIN movie_biases mb ON mb.model_id = a.model_id AND mb.movie_id = r.movie_id "
                "JOIN user_features u ON u.model_id = a.model_id AND u.user_id = r.user_id "
                "JOIN movie_features m ON m.model_id = a.model_id AND m.movie_id = r.movie_id "
                "AND m.feature = u.feature "
                "GROUP BY r.id, r.value, a.global_mean, ub.bias, mb.bias, a.rating_min, a.rating_max"
            )
        ).all()
    frame = pd.read_csv(seed_data / "movie_ratings_data_set.csv")
    matrix = RatingMatrix.from_triples(frame.user_id, frame.movie_id, frame.value)
    factors = make_solver("als").fit(matrix)
    row, col = matrix.user_index(np.array([1]))[0], matrix.movie_index(np.array([3]))[0]
    assert predicted == pytest.approx(factors.predict(row, col)[0], abs=1e-6)
    values = np.array([r.value for r in per_rating])
    sql_pred = np.clip([r.raw for r in per_rating], per_rating[0].rating_min, per_rating[0].rating_max)
    stored = recsql.list_models(engine)[0].metrics["train_rmse"]
    assert len(values) == 680
    assert np.sqrt(np.mean((sql_pred - values) ** 2)) == pytest.approx(stored, abs=1e-9)


def test_evaluate_and_tune_commands(engine, run, seed_data, tmp_path):
    files = [
        "--train",
        seed_data / "movie_ratings_data_set_training.csv",
        "--test",
        seed_data / "movie_ratings_data_set_testing.csv",
    ]
    out = run("evaluate", "--solver", "cg", "--features", 15, "--regularization", 1.1, *files).output
    assert re.search(r"^1 +0\.249\d +\S+ +1\.209\d", out, flags=re.M), out
    evaluation = recsql.evaluate(train_file=files[1], test_file=files[3], solver="cg", features=15, regularization=1.1)
    assert evaluation.mean["test_rmse"] == pytest.approx(1.2097, abs=0.001)
    assert 0 <= evaluation.mean["ndcg_at_10"] <= 1

    run("import", "ratings", seed_data / "movie_ratings_data_set.csv")
    out = run("evaluate", "--folds", 3, "--samples", 20).output
    assert len(re.findall(r"^[123] ", out, flags=re.M)) == 3 and "mean" in out
    assert "exactly one of" in run("evaluate", "--folds", 3, "--test-fraction", 0.2, ok=False).output
    document = json.loads(run("evaluate", "--folds", 2, "--samples", 0, "--json").output)
    expected = recsql.evaluate(engine, folds=2, samples=0)
    assert len(document["folds"]) == 2 and document["params"] == expected.params
    for name in ("test_rmse", "ndcg_at_10"):
        assert document["mean"][name] == pytest.approx(expected.mean[name])

    plot = tmp_path / "tune.png"
    out = run(
        "tune", "--features", "2,4", "--regularization", "0.1,1", "--samples", 0, "--test-fraction", 0.3, "--plot", plot
    ).output
    table = [line.split() for line in out.splitlines() if re.match(r"^ +[24] ", line)]
    assert len(table) == 4
    rmse = [float(row[2]) for row in table]
    assert rmse == sorted(rmse)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    grid = json.loads(
        run(
            "tune", "--features", "2", "--regularization", "0.1,1", "--samples", 0, "--test-fraction", 0.3, "--json"
        ).output
    )
    assert [(g["features"], g["regularization"]) for g in grid] == [
        (2, lam)
        for lam, _ in sorted(
            ((float(row[1]), float(row[2])) for row in table if row[0] == "2"), key=lambda pair: pair[1]
        )
    ]

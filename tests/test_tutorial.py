"""The tutorial's data set: its published numbers, the similar_movies view and the
README's SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import recsql
from recsql.algorithms.solvers import ConjugateGradient
from recsql.data.matrix import RatingMatrix
from tests.conftest import ROOT

TUTORIAL_TRAIN_RMSE = 0.24952555662048573
TUTORIAL_TEST_RMSE = 1.2096517096071573


@pytest.mark.parametrize("features", [15, 11])
def test_published_numbers(engine, run, seed_data, features):
    run("import", "ratings", seed_data / "movie_ratings_data_set_training.csv")
    out = run(
        "train",
        "--solver",
        "cg",
        "--features",
        features,
        "--regularization",
        "1.1",
        "--test-file",
        seed_data / "movie_ratings_data_set_testing.csv",
    ).output
    assert re.search(r"train RMSE 0\.249\d+", out) and re.search(r"test  RMSE 1\.209\d+", out)
    metrics = recsql.list_models(engine)[0].metrics
    assert abs(metrics["train_rmse"] - TUTORIAL_TRAIN_RMSE) <= 0.0005
    assert abs(metrics["test_rmse"] - TUTORIAL_TEST_RMSE) <= 0.0010
    assert metrics["n_test"] == 211 and metrics["n_test_skipped"] == 0


@pytest.fixture
def tutorial_model(engine, run, seed_data):
    """The full tutorial data set trained with 15 features and regularization 0.1."""
    run("import", "ratings", seed_data / "movie_ratings_data_set.csv")
    run("import", "movies", seed_data / "movies.csv")
    run("train", "--solver", "cg", "--features", 15, "--regularization", 0.1, "--metric", "l1")
    return engine


def test_similar_movies_view_for_movie_3(tutorial_model):
    with tutorial_model.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT movie_id, title, rank, similar_movie_id, score FROM similar_movies "
                "WHERE movie_id = 3 ORDER BY rank"
            )
        ).all()
        recomputed = dict(
            conn.execute(
                text(
                    "SELECT b.movie_id, SUM(ABS(a.value - b.value)) "
                    "FROM active_model m "
                    "JOIN movie_features a ON a.model_id = m.model_id AND a.movie_id = 3 "
                    "JOIN movie_features b ON b.model_id = m.model_id AND b.feature = a.feature "
                    "GROUP BY b.movie_id"
                )
            ).all()
        )
    assert len(rows) == 20
    assert {r.title for r in rows} == {"The Sheriff 2"}
    assert [r.rank for r in rows] == list(range(1, 21))
    assert 3 not in [r.similar_movie_id for r in rows]
    scores = [r.score for r in rows]
    assert scores == sorted(scores)
    for r in rows:
        assert r.score == pytest.approx(recomputed[r.similar_movie_id], abs=1e-9)
    others = sorted(v for k, v in recomputed.items() if k != 3)
    assert scores == pytest.approx(others[:20], abs=1e-9)  # and they are the 20 closest


def readme_sql() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    return {block.splitlines()[0].removeprefix("-- ").strip(): block for block in blocks}


def test_readme_sql(tutorial_model, seed_data):
    sql = readme_sql()
    with tutorial_model.connect() as conn:
        similar = conn.execute(text(sql["the 5 movies most similar to movie 3"])).all()
        vector = conn.execute(text(sql["the feature vector of movie 3"])).all()
        predicted = conn.execute(text(sql["the predicted rating of user 1 for movie 3"])).scalar()
    served = recsql.Recommender(tutorial_model).similar(3, limit=5)
    assert [r.similar_movie_id for r in similar] == [m.movie_id for m in served]
    assert [r.feature for r in vector] == list(range(15))
    # The same model fitted in memory predicts the same rating as the SQL.
    frame = pd.read_csv(seed_data / "movie_ratings_data_set.csv")
    matrix = RatingMatrix.from_triples(frame.user_id, frame.movie_id, frame.value)
    factors = ConjugateGradient(features=15, regularization=0.1).fit(matrix)
    row, col = matrix.user_index(np.array([1]))[0], matrix.movie_index(np.array([3]))[0]
    assert predicted == pytest.approx(factors.predict(row, col)[0], abs=1e-6)
    assert np.allclose([r.value for r in vector], factors.movie_factors[col[0]], atol=1e-6)


def test_similar_command_prints_like_the_tutorial(tutorial_model, run):
    out = run("similar", 3, "--limit", 5).output
    assert "Movie title: The Sheriff 2" in out
    assert "The 5 most similar movies are:" in out
    assert len([line for line in out.splitlines() if re.match(r"\s+\d+\s+\d+\s", line)]) == 5

"""The large-catalogue path, small enough for CI: generate, then retrain with the
README's large-catalogue settings, through the same code as 25 million ratings."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

import recsql
from recsql.data.synthetic import synthetic_ratings
from recsql.progress import Phases


def test_synthetic_ratings_are_realistic_and_reproducible():
    a = synthetic_ratings(200_000, 2_000, 800, seed=1)
    b = synthetic_ratings(200_000, 2_000, 800, seed=1)
    assert a.ratings.equals(b.ratings)
    keys = a.ratings.user_id * 10_000 + a.ratings.movie_id
    assert len(np.unique(keys)) == 200_000  # no repeated (user, movie) pair
    assert set(np.unique(a.ratings.value)) <= set(np.arange(1, 11) / 2)
    per_movie = np.bincount(a.ratings.movie_id)[1:]
    assert per_movie.max() > 10 * np.median(per_movie)  # blockbusters and a long tail
    genres = {"Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Documentary", "Western"}
    assert set(a.movies.genres) <= genres


def test_generate_command(engine, run):
    out = run("generate", "--ratings", 30_000, "--users", 600, "--movies", 300).output
    assert "generated 30000 ratings" in out
    with engine.connect() as conn:
        count, pairs = conn.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT user_id * 1000 + movie_id) FROM ratings")
        ).one()
        movies = conn.execute(text("SELECT COUNT(*) FROM movies")).scalar()
    assert count == pairs == 30_000 and movies == 300
    again = run("generate", "--ratings", 10, "--users", 5, "--movies", 5, ok=False)
    assert "already holds 30000 ratings" in again.output
    run("generate", "--ratings", 1_000, "--users", 50, "--movies", 40, "--replace")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM ratings")).scalar() == 1_000
    too_dense = run("generate", "--ratings", 100, "--users", 5, "--movies", 5, "--replace", ok=False)
    assert "more than half" in too_dense.output


@pytest.mark.slow
def test_million_ratings_smoke(engine, run):
    """About a million ratings through generate and the large-catalogue retrain (untimed)."""
    run("generate", "--ratings", 1_000_000, "--users", 6_500, "--movies", 2_400)
    out = run("train", "--samples", 0, "--features", 10, "--max-iterations", 5, "--test-fraction", 0.05).output
    model = recsql.list_models(engine)[0]
    # The held-out 5 % scored the first fit; the model served was refitted on all of them.
    assert model.n_ratings == 1_000_000 and model.metrics["scored_fit_ratings"] == 950_000
    assert model.status == "active"
    assert set(model.timings) >= {
        "read",
        "fit",
        "similarities",
        "recommendations",
        "refit",
        "refit similarities",
        "refit recommendations",
        "write",
        "activate",
    }
    assert model.metrics["test_rmse"] < 0.85  # the generator's noise alone is 0.7
    assert "seconds: read" in out
    with engine.connect() as conn:
        users, recs = conn.execute(text("SELECT COUNT(DISTINCT user_id), COUNT(*) FROM recommended_movies")).one()
        sims = conn.execute(text("SELECT COUNT(*) FROM similar_movies")).scalar()
    assert users == model.n_users and recs == 10 * model.n_users
    assert sims == 20 * model.n_movies


def test_phases_are_timed_and_drawn(capsys):
    phases = Phases(show=True)
    with phases("fit", total=3) as step:
        for _ in range(3):
            step(1)
    assert set(phases.timings) == {"fit"}
    assert "fit" in capsys.readouterr().err
    assert Phases.summary_of({"read": 1.0, "fit": 2.5}) == "seconds: read 1.00, fit 2.50 (total 3.50)"

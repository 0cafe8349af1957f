"""A retrain that holds out ratings to score itself serves a model fitted on every
rating: a movie whose only ratings fell in the held-out share is served, and the
stored metrics say they scored the fit on the rest."""

from __future__ import annotations

import json

import numpy as np

import recsql
from recsql.data.matrix import RatingMatrix
from recsql.evaluation.splits import split_random

FRACTION, SEED = 0.2, 0


def _ratings() -> tuple[str, int, int]:
    """A catalogue with a movie all of whose ratings the split holds out, the movie, and
    how many ratings there are."""
    rows = [(u, m, (u * m) % 5 + 1) for u in range(1, 31) for m in range(1, 13) if (u + m) % 3]
    rows += [(u, 100 + u, 5) for u in range(1, 21)]  # movies of one rating each: some are held out
    users, movies, values = (np.array(c) for c in zip(*rows))
    fitted, held = (
        set(part.movie_ids[part.csr.getnnz(axis=0) > 0].tolist())
        for part in split_random(RatingMatrix.from_triples(users, movies, values), FRACTION, SEED)
    )
    only_held = sorted(held - fitted)
    assert only_held, "the split must hold out every rating of some movie"
    csv = "user_id,movie_id,value\n" + "\n".join(f"{u},{m},{v}" for u, m, v in rows)
    return csv, only_held[0], len(rows)


def test_the_served_model_holds_every_rating(db_url, run, tmp_path):
    csv, movie, n = _ratings()
    (tmp_path / "r.csv").write_text(csv)
    run("import", "ratings", tmp_path / "r.csv")
    out = run("train", "--test-fraction", FRACTION, "--seed", SEED, "--features", 2, "--samples", 0).output
    assert f"refitted on all {n}" in out
    shown = json.loads(run("models", "show", 1, "--json").output)
    assert shown["n_ratings"] == n and shown["params"]["refit"] is True
    metrics = shown["metrics"]
    assert metrics["refit"] is True
    assert metrics["scored_fit_ratings"] + metrics["n_test"] + metrics["n_test_skipped"] == n
    assert f"refitted on all {n}" in run("models", "show", 1).output
    assert json.loads(run("similar", movie, "--json").output)  # a movie only the held-out share rated

    # --no-refit stores the scored fit, which never saw that movie.
    out = run(
        "train", "--test-fraction", FRACTION, "--seed", SEED, "--features", 2, "--samples", 0, "--no-refit"
    ).output
    assert "refitted" not in out
    engine = recsql.connect(db_url)
    model = recsql.show_model(engine, 2)
    assert model.n_ratings == metrics["scored_fit_ratings"] and model.params["refit"] is False
    assert model.metrics["test_rmse"] == metrics["test_rmse"]  # the same split, the same scored fit
    assert f"unknown movie {movie}" in run("similar", movie, ok=False).output
    engine.dispose()

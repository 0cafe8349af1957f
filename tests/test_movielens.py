"""MovieLens 100K end to end through the CLI: import u1.base and u.item, train, score u1.test."""

import re

import recsql


def test_u1_end_to_end(engine, run, ml100k):
    run("import", "ratings", ml100k / "u1.base")
    run("import", "movies", ml100k / "u.item")
    # Fewer iterations than the default keep CI quick; the full run is in the closing note.
    out = run(
        "train",
        "--solver",
        "cg",
        "--max-iterations",
        200,
        "--regularization",
        10,
        "--test-file",
        ml100k / "u1.test",
    ).output
    rmse = float(re.search(r"test  RMSE (\d+\.\d+)", out).group(1))
    metrics = recsql.list_models(engine)[0].metrics
    assert metrics["n_train"] == 80_000
    assert metrics["n_test"] + metrics["n_test_skipped"] == 20_000
    assert rmse == round(metrics["test_rmse"], 6) and 0.5 < rmse < 1.5
    assert "Movie title: Toy Story (1995)" in run("similar", 1).output

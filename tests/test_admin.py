"""The admin's view: `recsql inspect movie|user|model`, `recsql models diff`, the
beyond-accuracy metrics stored with every run, and `recsql report` (its browser test is
tests/test_report_browser.py).  The commands are driven as typed and their answers
checked against the stored tables with plain SQL, on MovieLens 100K u1, on both
databases."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import recsql
from recsql import store
from recsql.errors import UnknownModel, UnknownMovie, UnknownUser
from recsql.serving.admin import AdminReader
from tests.conftest import Cli

STAR_WARS = 50


@pytest.fixture(scope="module")
def admin(module_db_url, ml100k):
    """Model 1: the default (Bayesian ALS, items lists); model 2: `--samples 0`, active."""
    engine = recsql.connect(module_db_url)
    recsql.import_ratings(engine, ml100k / "u1.base")
    recsql.import_movies(engine, ml100k / "u.item")
    first = recsql.train(engine, test_file=ml100k / "u1.test")
    second = recsql.train(engine, test_file=ml100k / "u1.test", samples=0)
    yield {"engine": engine, "cli": Cli(module_db_url), "first": first, "second": second}
    engine.dispose()


def _frame(engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql), params).mappings().all())


def test_inspect_movie_answers_from_the_stored_rows(admin, ml100k):
    engine, cli = admin["engine"], admin["cli"]
    shown = cli("inspect", "movie", STAR_WARS, "--limit", 5).output
    assert "Star Wars (1977)" in shown and "bias" in shown and "users' recommendations" in shown
    found = json.loads(cli("inspect", "movie", STAR_WARS, "--json").output)
    model = admin["second"].model_id
    assert found["model_id"] == model and found["title"] == "Star Wars (1977)"
    features = _frame(
        engine,
        "SELECT value FROM movie_features WHERE model_id = :m AND movie_id = :i ORDER BY feature",
        m=model,
        i=STAR_WARS,
    )["value"].tolist()
    assert found["features"] == pytest.approx(features)
    ratings = pd.read_csv(ml100k / "u1.base", sep="\t", header=None, names=["u", "m", "r", "t"])
    of_movie = ratings[ratings.m == STAR_WARS]
    assert found["n_ratings"] == len(of_movie) and found["mean_rating"] == pytest.approx(of_movie.r.mean())
    listed = _frame(
        engine, "SELECT user_id FROM user_recommendations WHERE model_id = :m AND movie_id = :i", m=model, i=STAR_WARS
    )
    assert found["recommended_to"] == listed.user_id.nunique()
    with recsql.Recommender(engine) as recommender:
        similar = recommender.similar(STAR_WARS, limit=10)
    assert [s["movie_id"] for s in found["similar"]] == [s.movie_id for s in similar]
    older = json.loads(cli("inspect", "movie", STAR_WARS, "--model", admin["first"].model_id, "--json").output)
    assert older["model_id"] == admin["first"].model_id and older["features"] != found["features"]


def test_inspect_user_explains_each_recommendation_as_explain_does(admin, ml100k):
    engine, cli = admin["engine"], admin["cli"]
    shown = cli("inspect", "user", 1, "--because", 2).output
    assert "because they rated" in shown and "features:" in shown
    found = json.loads(cli("inspect", "user", 1, "--json").output)
    ratings = pd.read_csv(ml100k / "u1.base", sep="\t", header=None, names=["u", "m", "r", "t"])
    assert len(found["ratings"]) == (ratings.u == 1).sum()
    assert found["ratings"][0]["rating"] == ratings[ratings.u == 1].r.max()  # best rated first
    view = _frame(engine, "SELECT movie_id FROM recommended_movies WHERE user_id = 1 ORDER BY rank")
    assert [r["movie_id"] for r in found["recommendations"]] == view.movie_id.tolist()
    with recsql.Recommender(engine) as recommender:
        for row in found["recommendations"][:3]:
            expected = recommender.explain(1, row["movie_id"], limit=3)
            assert [b["movie_id"] for b in row["because"]] == [c.movie_id for c in expected]
            assert [b["contribution"] for b in row["because"]] == pytest.approx([c.contribution for c in expected])


def test_the_admin_reader_reads_what_the_recommender_leaves_out(admin, ml100k):
    """Ratings of any model's source, ids and titles are the admin's (AdminReader), not
    the application's Recommender's, whose API is what a web request needs."""
    engine = admin["engine"]
    ratings = pd.read_csv(ml100k / "u1.base", sep="\t", header=None, names=["u", "m", "r", "t"])
    with AdminReader(engine) as reader:
        assert reader.user_id("1") == reader.user_id(1) == 1
        assert reader.user_ratings(1, admin["first"].model_id) == {
            int(m): float(r) for m, r in zip(ratings[ratings.u == 1].m, ratings[ratings.u == 1].r)
        }
        assert sorted(reader.movie_ratings(STAR_WARS)) == sorted(ratings[ratings.m == STAR_WARS].r.astype(float))
        titles = reader.titles([STAR_WARS, 10**9])
        assert list(titles) == [STAR_WARS] and titles[STAR_WARS].title == "Star Wars (1977)"
        assert reader.movie(STAR_WARS) == titles[STAR_WARS]
        with pytest.raises(UnknownUser):
            reader.user_ratings("nobody")
    assert not {"user_ratings", "movie_ratings", "user_id", "titles"} & set(dir(recsql.Recommender))


def test_inspect_model_counts_rows_and_bytes(admin):
    engine, cli = admin["engine"], admin["cli"]
    model = admin["second"].model_id
    found = json.loads(cli("inspect", "model", "--json").output)
    assert found["model"]["model_id"] == model
    counts = recsql.output_counts(engine, model)
    assert {t["table"]: t["rows"] for t in found["tables"]} == counts
    for table in found["tables"]:
        assert table["table_rows"] >= table["rows"]  # both models' rows are kept
        assert table["table_bytes"] > 0 and 0 < table["model_bytes"] <= table["table_bytes"]
    assert found["model_bytes"] == sum(t["model_bytes"] for t in found["tables"])
    shown = cli("inspect", "model", admin["first"].model_id).output
    assert "metrics.ndcg_at_10" in shown and "this model's share" in shown and "seconds.fit" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inspect", "movie", 99999), "unknown movie 99999"),
        (("inspect", "user", 99999), "unknown user 99999"),
        (("inspect", "model", 77), "unknown model 77"),
        (("inspect", "movie", STAR_WARS, "--model", 77), "unknown model 77"),
        (("models", "diff", 1, 77), "unknown model 77"),
    ],
)
def test_unknown_ids_are_one_line_and_exit_1(admin, args, message):
    result = admin["cli"](*args, ok=False)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_the_api_raises_the_same_errors(admin):
    engine = admin["engine"]
    with pytest.raises(UnknownMovie):
        recsql.inspect_movie(engine, 99999)
    with pytest.raises(UnknownUser):
        recsql.inspect_user(engine, 99999)
    with pytest.raises(UnknownModel):
        recsql.inspect_model(engine, 77)


def test_models_diff_compares_metrics_and_lists(admin):
    engine, cli = admin["engine"], admin["cli"]
    a, b = admin["first"].model_id, admin["second"].model_id
    found = json.loads(cli("models", "diff", a, b, "--json").output)
    metrics = {m["name"]: m for m in found["metrics"]}
    rmse = metrics["test_rmse"]
    assert rmse["a"] == pytest.approx(admin["first"].metrics["test_rmse"])
    assert rmse["b"] == pytest.approx(admin["second"].metrics["test_rmse"])
    assert rmse["better"] == (rmse["b"] < rmse["a"])
    # overlap@10 recomputed from the stored lists with pandas
    lists = _frame(
        engine, "SELECT model_id, user_id, movie_id FROM user_recommendations WHERE model_id IN (:a, :b)", a=a, b=b
    )
    first = lists[lists.model_id == a].groupby("user_id").movie_id.apply(set)
    second = lists[lists.model_id == b].groupby("user_id").movie_id.apply(set)
    overlap = [len(first[u] & second[u]) / len(first[u]) for u in first.index.intersection(second.index)]
    assert found["users_compared"] == len(overlap) == admin["second"].n_users
    assert found["mean_overlap"] == pytest.approx(np.mean(overlap))
    assert 0 < found["users_changed"] <= found["users_compared"]
    assert len(found["most_changed"]) == 10
    order = [(m["overlap"], -m["n_ratings"]) for m in found["most_changed"]]  # least overlap, then most rated
    assert order == sorted(order)
    counts = _frame(engine, "SELECT movie_id, COUNT(*) AS n FROM ratings GROUP BY movie_id").set_index("movie_id").n
    assert all(m["n_ratings"] == counts[m["movie_id"]] for m in found["most_changed"])
    shown = cli("models", "diff", a, b).output
    assert "B is" in shown and "overlap@10" in shown and re.search(r"test_rmse .* (better|worse)", shown)


def test_a_model_diffed_with_itself_changes_nothing(admin):
    model = admin["second"].model_id
    same = recsql.diff_models(admin["engine"], model, model)
    assert same.users_changed == 0 and same.mean_overlap == 1.0 and same.mean_similar_overlap == 1.0
    assert all(m.better is None for m in same.metrics)


def test_beyond_accuracy_metrics_are_stored_and_match_the_stored_lists(admin):
    """Recomputed with SQL from the stored recommendations and the ratings."""
    engine = admin["engine"]
    for result in (admin["first"], admin["second"]):
        metrics = store.show_model(engine, result.model_id).metrics
        lists = _frame(
            engine, "SELECT user_id, movie_id FROM user_recommendations WHERE model_id = :m", m=result.model_id
        )
        counts = _frame(engine, "SELECT movie_id, COUNT(*) AS n FROM ratings GROUP BY movie_id").set_index("movie_id").n
        assert metrics["coverage"] == pytest.approx(lists.movie_id.nunique() / result.n_movies)
        assert metrics["recommended_popularity"] == pytest.approx(counts[lists.movie_id].mean())
        assert metrics["popularity_lift"] == pytest.approx(counts[lists.movie_id].mean() / counts.mean())
        shown = Counter(lists.movie_id)
        times = np.sort([shown.get(m, 0) for m in counts.index])
        n = len(times)
        assert metrics["gini"] == pytest.approx(((2 * np.arange(1, n + 1) - n - 1) * times).sum() / (n * times.sum()))
        assert metrics["novelty"] == pytest.approx(np.mean(-np.log2(counts[lists.movie_id] / result.n_users)))
        features = _frame(
            engine, "SELECT movie_id, feature, value FROM movie_features WHERE model_id = :m", m=result.model_id
        ).pivot(index="movie_id", columns="feature", values="value")
        unit = features.div(np.linalg.norm(features.to_numpy(), axis=1), axis=0)
        per_user = []
        for movies in lists.groupby("user_id").movie_id.apply(list):
            if len(movies) > 1:
                vectors = unit.loc[movies].to_numpy()
                pairs = [(i, j) for i in range(len(movies)) for j in range(i + 1, len(movies))]
                per_user.append(np.mean([1 - vectors[i] @ vectors[j] for i, j in pairs]))
        assert metrics["intra_list_diversity"] == pytest.approx(np.mean(per_user))


def test_each_als_sweep_records_the_train_rmse(admin):
    """The report's training curve: one train RMSE per sweep, falling overall."""
    metrics = store.show_model(admin["engine"], admin["second"].model_id).metrics
    curve = metrics["sweep_train_rmse"]
    assert len(curve) == admin["second"].params["max_iterations"]
    assert curve[-1] < curve[0] and abs(curve[-1] - metrics["train_rmse"]) < 0.02


def test_report_is_one_self_contained_page(admin, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.html"
    admin["cli"]("report", "--out", out)
    page = out.read_text()
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == 6 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "Star Wars (1977)" in page
    # Model 2 (--samples 0) against model 1 (the default): the verdict its RMSE earns.
    now, before = admin["second"].metrics["test_rmse"], admin["first"].metrics["test_rmse"]
    row = re.search(
        r"<td>test_rmse</td><td class='n'>([\d.]+)</td><td class='n'>([\d.]+)</td>"
        r"<td><span class='(\w+)'>",
        page,
    )
    assert row is not None
    assert (float(row[1]), float(row[2])) == (round(now, 4), round(before, 4))
    assert row[3] == ("better" if now < before else "worse")
    assert f"recsql model {admin['second'].model_id}" in page
    older = tmp_path / "older.html"
    admin["cli"]("report", admin["first"].model_id, "--out", older)
    assert f"recsql model {admin['first'].model_id}" in older.read_text()


def test_the_readme_figures_of_the_default_models_lists(admin):
    """The tutorial, "Inspecting models": on u1 the default model's lists cover a quarter
    of the catalogue and lean to popular movies five times over."""
    metrics = admin["first"].metrics
    assert admin["first"].params["samples"] != 0  # the default, Bayesian model
    assert round(metrics["coverage"], 2) == 0.25
    assert 4.5 <= metrics["popularity_lift"] < 5.5


def test_a_pruned_model_is_refused_with_the_reason(db_url, run, tmp_path):
    """Its `models` row (and metrics) stay, its lists are gone: inspecting a movie or a
    user of it, diffing or reporting it says so; `inspect model` still shows its record."""
    (tmp_path / "r.csv").write_text(
        "user_id,movie_id,value\n"
        + "\n".join(f"{u},{m},{(u * m) % 5 + 1}" for u in range(1, 13) for m in range(1, 9) if (u + m) % 3)
    )
    run("import", "ratings", tmp_path / "r.csv")
    run("train", "--features", 2, "--samples", 0)
    run("train", "--features", 2, "--samples", 0, "--keep", 1)
    for args in (
        ("inspect", "movie", 1, "--model", 1),
        ("inspect", "user", 1, "--model", 1),
        ("models", "diff", 1, 2),
        ("report", 1, "--out", tmp_path / "r.html"),
    ):
        result = run(*args, ok=False)
        assert result.exit_code == 1 and "model 1 is pruned" in result.output, (args, result.output)
    assert json.loads(run("inspect", "model", 1, "--json").output)["model"]["status"] == "pruned"

"""The item model at every catalogue size: the exact solve in float32 and in place, the
memory it is allowed, the penalties chosen per retrain (and stored), and the generator
whose choices follow tastes, without which ranking at size means nothing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import text

import recsql
from recsql.algorithms import item_tuning, ranking
from recsql.algorithms.head import HeadItemItem, affordable_head
from recsql.algorithms.item_tuning import choose_item_settings, fit_item_model
from recsql.algorithms.quality import top_k_quality
from recsql.algorithms.ranking import (
    ExactItemItem,
    LowRankItemItem,
    SplitItemItem,
    dense_gram,
    ease_weights,
    exact_affordable,
    liked_grams,
    liked_pattern,
    rated_by,
)
from recsql.algorithms.topk import top_k_largest
from recsql.data.matrix import RatingMatrix
from recsql.data.synthetic import synthetic_ratings
from recsql.evaluation.evaluate import evaluate_on
from recsql.evaluation.metrics import HeldOut
from recsql.evaluation.splits import split_random
from recsql.options import FitOptions


def pattern(n_users: int, n_movies: int, density: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_movies)) < density).astype(np.float32))


@pytest.mark.parametrize("n_movies", [7, 1_100, 2_300])  # the mirrored triangle: one band, bands of 128 and a part
def test_float32_cholesky_in_place_matches_the_dense_inverse(n_movies):
    x = pattern(3 * n_movies, n_movies, 0.02, seed=n_movies)
    gram = dense_gram(x)
    assert gram.dtype == np.float32 and gram.flags.c_contiguous
    reference = (x.T @ x).toarray().astype(np.float64)
    np.testing.assert_array_equal(gram, reference)  # counts: exact in float32
    reference[np.diag_indices(n_movies)] += 40.0
    precision = np.linalg.inv(reference)
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    weights = ease_weights(gram, 40.0)
    assert np.shares_memory(weights, gram)  # one n x n buffer
    np.testing.assert_allclose(weights, expected, atol=2e-6 * np.abs(expected).max() + 1e-7)


def test_a_gram_matrix_that_is_not_positive_definite_is_refused():
    with pytest.raises(ArithmeticError, match="not positive definite"):
        ease_weights(np.diag([1.0, -5.0, 1.0]).astype(np.float32), 1.0)


def test_the_exact_model_is_used_only_where_its_memory_and_time_are(monkeypatch):
    x = pattern(300, 3_001, 0.05, seed=1)
    assert (x.getnnz(axis=0) > 0).all()
    rows, cols = x.nonzero()
    ratings = RatingMatrix.from_triples(rows, cols, np.full(len(rows), 4.0))
    counts = x.getnnz(axis=1)
    assert exact_affordable(counts, 3_001) and isinstance(fit_item_model(ratings, 100.0), ExactItemItem)
    # Its cost: co-rated pairs for the Gram, n^3 per solve, ratings x movies to score.
    pairs = float((counts.astype(float) ** 2).sum())
    expected = pairs / ranking.GRAM_RATE + 2 * 3_001.0**3 / ranking.SOLVE_RATE + x.nnz * 3_001.0 / ranking.SCORE_RATE
    assert ranking.exact_seconds(counts, 3_001, copies=2) == pytest.approx(expected)
    monkeypatch.setattr(ranking, "EXACT_SECONDS", ranking.exact_seconds(counts, 3_001) * 0.99)
    assert not exact_affordable(counts, 3_001) and isinstance(fit_item_model(ratings, 100.0), HeadItemItem)
    monkeypatch.setattr(ranking, "EXACT_SECONDS", 1e9)
    monkeypatch.setattr(ranking, "_free_memory", lambda: 2 * 3_001 * 3_001 * 4)
    assert exact_affordable(counts, 3_001) and not exact_affordable(counts, 3_001, copies=2)
    monkeypatch.setattr(ranking, "_free_memory", lambda: 2 * 3_001 * 3_001 * 4 - 2)
    assert not exact_affordable(counts, 3_001)
    monkeypatch.setattr(ranking, "_free_memory", lambda: 1 << 40)
    monkeypatch.setattr(ranking, "ITEM_MODEL_LIMIT", 3_000)
    assert not exact_affordable(counts, 3_001)


def test_the_search_walks_past_the_first_grid_to_the_best_penalty():
    for peak in (8_000.0, 31.25, 500.0):
        tried: dict[float, float] = {}

        def measure(penalty: float, peak: float = peak, tried: dict[float, float] = tried) -> None:
            tried.setdefault(penalty, -abs(np.log2(penalty / peak)))

        item_tuning._search(measure, lambda tried=tried: tried)
        assert max(tried, key=tried.__getitem__) == peak
        assert len(tried) <= 3 + abs(np.log2(peak / 500.0)) + 1  # one step past the peak, on one side


def test_split_model_ranks_each_list_with_its_own_weights():
    x = pattern(60, 30, 0.2, seed=4)
    recommend, similar = ExactItemItem.fit(x, 5.0), ExactItemItem.fit(x, 80.0, similar_blend=0.25)
    both = SplitItemItem(recommend, similar)
    np.testing.assert_array_equal(both.weight_rows(0, 30), similar.weights)
    rows = np.arange(60)
    np.testing.assert_array_equal(both.choice_scores(rows, x), recommend.choice_scores(rows, x))
    assert both.similar_blend == 0.25
    assert both.facts()["item_regularization"] == 5.0 and both.facts()["similar_regularization"] == 80.0


def taste_catalogue(choices: str = "taste") -> tuple[RatingMatrix, RatingMatrix]:
    frame = synthetic_ratings(60_000, 1_500, 1_200, seed=3, choices=choices).ratings  # type: ignore[arg-type]
    matrix = RatingMatrix.from_triples(frame.user_id.to_numpy(), frame.movie_id.to_numpy(), frame.value.to_numpy())
    return split_random(matrix, 0.2, seed=0)


def most_popular_ndcg(train: RatingMatrix, test: RatingMatrix) -> float:
    held = HeldOut.of(train.user_ids, train.movie_ids, train, test)
    counts = np.bincount(train.cols, minlength=train.n_movies).astype(float)
    scores = np.broadcast_to(counts, (len(held.users), train.n_movies)).copy()
    rated = held.rated[held.users]
    scores[np.repeat(np.arange(len(held.users)), np.diff(rated.indptr)), rated.indices] = -np.inf
    return top_k_quality(top_k_largest(scores, 10).indices, held.relevant)["ndcg_at_10"]


def test_chosen_penalties_are_the_validation_best_and_stored(tmp_path):
    train, _ = taste_catalogue()
    settings = choose_item_settings(train.csr, seed=0)
    assert settings.regularization == max(settings.recommend, key=settings.recommend.__getitem__)
    assert settings.similar_regularization == max(settings.similar, key=settings.similar.__getitem__)
    assert settings.similar_blend in item_tuning.LIFTS
    # The similar lists' liked weight and lift: the validation's best pair, recomputed here
    # from the definitions (both weights tried: the generator's ratings are liked and not).
    validation = item_tuning._validation(train.csr, 0)
    penalty = settings.similar_regularization * validation.share
    by_weight = {
        1.0: ease_weights(dense_gram(validation.train), penalty),
        item_tuning.SIMILAR_WEIGHT: ease_weights(dense_gram(liked_pattern(validation.ratings, 0.5)), penalty),
    }
    scored = {
        (lift, weight): item_tuning._similar_ndcg(validation, b, lift)
        for weight, b in by_weight.items()
        for lift in item_tuning.LIFTS
    }
    best = max(scored.values())
    assert scored[settings.similar_blend, settings.similar_weight] == pytest.approx(best, abs=1e-6)
    assert settings.similar[settings.similar_regularization] == pytest.approx(best, abs=1e-6)
    assert set(settings.weights) == set(by_weight)
    # A retrain chooses them the same way and says so in the model's params.
    engine = recsql.connect(f"sqlite:///{tmp_path / 'r.db'}")
    recsql.generate(engine, ratings=60_000, users=1_500, movies=1_200, seed=3)
    recsql.train(engine, features=6, samples=0, max_iterations=3)
    params = recsql.list_models(engine)[0].params
    tried = {float(k): v for k, v in params["item_tuning"]["recommend_ndcg"].items()}
    assert params["item_regularization"] == max(tried, key=tried.__getitem__)
    assert params["item_model"] == "exact"
    assert params["similar_weight"] in (1.0, 0.5) and set(params["item_tuning"]["similar_weight_ndcg"]) == {
        "0.5",
        "1.0",
    }
    recsql.train(engine, features=6, samples=0, max_iterations=3, item_regularization=321.0)
    given = recsql.list_models(engine)[0].params
    assert given["item_regularization"] == 321.0 and "item_tuning" not in given
    assert given["similar_blend"] == 0.5 and "similar_regularization" not in given


def test_a_refit_keeps_the_scored_fits_choice(tmp_path, monkeypatch):
    searches = []
    choose = item_tuning.choose_item_settings
    monkeypatch.setattr(item_tuning, "choose_item_settings", lambda *a, **k: searches.append(1) or choose(*a, **k))
    engine = recsql.connect(f"sqlite:///{tmp_path / 'r.db'}")
    recsql.generate(engine, ratings=20_000, users=500, movies=400, seed=1)
    result = recsql.train(engine, features=4, samples=0, max_iterations=2, test_fraction=0.2)
    assert result.refitted and len(searches) == 1
    assert str(result.params["item_regularization"]) in result.params["item_tuning"]["recommend_ndcg"]
    assert recsql.list_models(engine)[0].params["item_tuning"] == result.params["item_tuning"]


def test_taste_choices_give_lists_something_to_find():
    """Drawn by popularity alone, who-rated-what holds nothing beyond popularity and the
    item model can barely beat a most-popular list; drawn by taste, it must beat it well."""
    ratios = {}
    for choices in ("taste", "popularity"):
        train, test = taste_catalogue(choices)
        fold = evaluate_on([(train, test)], FitOptions(features=6, samples=0, max_iterations=3)).folds[0]
        ratios[choices] = fold.metrics["ndcg_at_10"] / most_popular_ndcg(train, test)
    assert ratios["taste"] >= 1.3, ratios
    assert ratios["taste"] > ratios["popularity"] + 0.2, ratios


def skewed(ratings: int, users: int) -> np.ndarray:
    """Users' rating counts with the generator's skewed activity (power 0.6)."""
    weight = 1.0 / np.arange(1, users + 1) ** 0.6
    return np.maximum(1, np.round(ratings * weight / weight.sum()))


def test_which_catalogues_are_solved_exactly():
    """docs/decisions.md: MovieLens 100K's shape is solved exactly; 3,700 movies with a
    million ratings, 9,000 with 100,000, and anything larger get the head model."""
    assert exact_affordable(skewed(100_000, 943), 1_682)
    assert not exact_affordable(skewed(1_000_000, 6_040), 3_700)
    assert not exact_affordable(skewed(100_000, 2_000), 9_000)
    assert not exact_affordable(skewed(5_000_000, 32_508), 11_809)
    assert not exact_affordable(skewed(25_000_000, 162_541), 59_047)


def test_head_model_is_exact_on_the_head_and_low_rank_elsewhere():
    x = pattern(200, 60, 0.15, seed=9)
    counts = x.getnnz(axis=0)
    head = np.sort(np.argsort(-counts, kind="stable")[:25])
    tail = np.setdiff1d(np.arange(60), head)
    low = LowRankItemItem.fit(x, 10.0, rank=8)
    model = HeadItemItem.fit(low, head, dense_gram(x[:, head].tocsr()))
    weights, low_weights = model.weight_rows(0, 60), low.weight_rows(0, 60)
    exact = ExactItemItem.fit(x[:, head].tocsr(), 10.0).weights
    np.testing.assert_allclose(weights[np.ix_(head, head)], exact, atol=1e-5)
    np.testing.assert_array_equal(weights[tail], low_weights[tail])
    np.testing.assert_array_equal(weights[:, tail], low_weights[:, tail])
    np.testing.assert_allclose(model.weight_rows(17, 41), weights[17:41], atol=1e-6)  # any block of rows
    rows = np.arange(200)
    np.testing.assert_allclose(model.choice_scores(rows, x), x.toarray() @ weights, rtol=1e-4, atol=1e-4)


def test_catalogues_too_large_for_the_exact_model_get_an_exact_head(monkeypatch):
    x = pattern(400, 1_500, 0.03, seed=2)
    rows, cols = x.nonzero()
    ratings = RatingMatrix.from_triples(rows, cols, np.full(len(rows), 4.0))
    rated = ranking.rated_by(ratings.csr)
    budget = ranking.exact_seconds(rated.getnnz(axis=1), 1_500) / 3  # the whole catalogue does not fit, a head does
    monkeypatch.setattr(ranking, "EXACT_SECONDS", budget)
    head = affordable_head(rated)
    assert head is not None and 500 <= len(head) < 1_500
    assert ranking.exact_seconds(rated[:, head].tocsr().getnnz(axis=1), len(head)) <= budget
    bigger = np.sort(np.argsort(-rated.getnnz(axis=0), kind="stable")[: len(head) + 80])
    assert ranking.exact_seconds(rated[:, bigger].tocsr().getnnz(axis=1), len(bigger)) > budget  # the largest
    model = fit_item_model(ratings, 50.0)
    assert isinstance(model, HeadItemItem) and model.facts()["item_model"].startswith("exact head of")
    monkeypatch.setattr(ranking, "EXACT_SECONDS", 0.0)  # not even a head
    assert affordable_head(rated) is None and isinstance(fit_item_model(ratings, 50.0), LowRankItemItem)


def test_a_sample_of_users_tries_each_penalty_scaled_by_its_share(monkeypatch):
    """Ridge penalties weigh against X^T X, which shrinks with the users sampled: a
    lambda meant for all of them is tried as share x lambda on the sample."""
    train, _ = taste_catalogue()
    monkeypatch.setattr(item_tuning, "GRAM_USERS", 600)
    validation = item_tuning._validation(train.csr, seed=0)
    assert validation is not None and validation.share == 600 / train.n_users
    assert validation.train.shape[0] == 600
    seen: list[float] = []
    monkeypatch.setattr(item_tuning, "ease_weights", lambda gram, penalty: seen.append(penalty) or gram)
    settings = choose_item_settings(train.csr, seed=0)
    assert set(settings.recommend) >= {125.0, 500.0, 2_000.0}
    assert seen[:3] == pytest.approx([p * 600 / train.n_users for p in (125.0, 500.0, 2_000.0)])


def test_an_item_model_that_fails_leaves_the_serving_model_as_it_was(engine, monkeypatch):
    """A Gram that LAPACK refuses mid-retrain, on a database already serving a model:
    the run is recorded as failed with the reason, the active model and its lists stay."""
    recsql.generate(engine, ratings=20_000, users=500, movies=400, seed=1)
    first = recsql.train(engine, features=4, samples=0, max_iterations=2, item_regularization=200.0)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*), SUM(score) FROM similar_movies")).one()

    def refused(gram: np.ndarray, penalty: float) -> np.ndarray:
        raise ArithmeticError("the item model's Gram matrix is not positive definite (LAPACK info 7)")

    monkeypatch.setattr(item_tuning, "ease_weights", refused)
    with pytest.raises(ArithmeticError, match="not positive definite"):
        recsql.train(engine, features=4, samples=0, max_iterations=2)
    models = recsql.list_models(engine)
    assert [m.status for m in models] == ["failed", "active"] and models[1].model_id == first.model_id
    assert "not positive definite" in models[0].error
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), SUM(score) FROM similar_movies")).one() == before


def test_both_grams_come_from_one_set_of_products():
    """liked_grams: X^T X and X_w^T X_w (a rating below liked weighing w) from the liked
    and other parts' products, equal to each computed alone; the ratings untouched."""
    rng = np.random.default_rng(5)
    values = (rng.random((400, 90)) < 0.15) * rng.integers(1, 6, (400, 90))
    ratings = sp.csr_matrix(values.astype(np.float64))
    before = (ratings.data.copy(), ratings.indices.copy(), ratings.indptr.copy())
    for weight in (0.5, 0.25):
        plain, weighted = liked_grams(ratings, weight)
        np.testing.assert_allclose(plain, dense_gram(rated_by(ratings)), atol=1e-4)
        np.testing.assert_allclose(weighted, dense_gram(liked_pattern(ratings, weight)), atol=1e-4)
        assert np.isclose(weighted[0, 0], sum(1.0 if v >= 4 else weight**2 for v in values[:, 0] if v))
    for got, kept in zip((ratings.data, ratings.indices, ratings.indptr), before):
        np.testing.assert_array_equal(got, kept)
    ones = sp.csr_matrix((values > 0).astype(np.float64))  # implicit feedback: nothing is liked
    plain, weighted = liked_grams(ones, 0.5)
    np.testing.assert_array_equal(plain, weighted)
    np.testing.assert_array_equal(liked_pattern(ones, 0.5).toarray(), rated_by(ones).toarray())


@pytest.mark.parametrize("path", ["exact", "head"])
def test_the_similar_lists_model_is_fitted_on_the_liked_gram(monkeypatch, path):
    """With a liked weight chosen, the similar lists come from the Gram in which a rating
    below liked weighs it (the exact model, or its head's exact part), recommendations
    from the 0/1 one."""
    rng = np.random.default_rng(8)
    values = (rng.random((500, 700)) < 0.08) * rng.integers(1, 6, (500, 700))
    rows, cols = np.nonzero(values)
    ratings = RatingMatrix.from_triples(rows, cols, values[rows, cols].astype(float))
    if path == "head":  # only a head of the catalogue fits
        monkeypatch.setattr("recsql.algorithms.head.SMALLEST_HEAD", 100)
        monkeypatch.setattr(ranking, "EXACT_SECONDS", ranking.exact_seconds(ratings.csr.getnnz(axis=1), 700, 2) / 2)
    settings = ranking.ItemSettings(300.0, 300.0, 0.25, 0.5)
    model = fit_item_model(ratings, settings)
    assert isinstance(model, SplitItemItem) and model.settings is settings
    liked, plain = liked_pattern(ratings.csr, 0.5), rated_by(ratings.csr)
    if path == "exact":
        assert isinstance(model.similar, ExactItemItem)
        np.testing.assert_allclose(model.similar.weights, ExactItemItem.fit(liked, 300.0).weights, atol=1e-5)
        np.testing.assert_allclose(model.recommend.weights, ExactItemItem.fit(plain, 300.0).weights, atol=1e-5)
    else:
        similar = model.similar
        assert isinstance(similar, HeadItemItem) and 100 <= len(similar.head) < 700
        head = similar.head
        exact = ExactItemItem.fit(liked[:, head].tocsr(), 300.0).weights
        np.testing.assert_allclose(similar.weight_rows(0, 700)[np.ix_(head, head)], exact, atol=1e-5)
    assert model.facts()["similar_weight"] == 0.5


def test_the_heads_bound_is_where_solving_and_scoring_alone_stop_fitting():
    in_head = np.cumsum(np.linspace(9_000, 100, 5_000).round())  # ratings of the head of each size
    for copies in (1, 2):
        bound = ranking.largest_affordable(in_head, copies)
        alone = [ranking.exact_seconds(np.zeros(0), n, copies, ratings=in_head[n - 1]) for n in (bound, bound + 1)]
        assert 0 < bound < 5_000 and alone[0] <= ranking.EXACT_SECONDS < alone[1]


def test_a_low_rank_model_alone_takes_the_unweighted_choice(monkeypatch):
    """Low-rank alone has nothing exact to weigh liked ratings in: the similar lists then
    come from the 0/1 pattern at the lift that was best for it, and say so."""
    rng = np.random.default_rng(8)
    values = (rng.random((300, 400)) < 0.08) * rng.integers(1, 6, (300, 400))
    rows, cols = np.nonzero(values)
    ratings = RatingMatrix.from_triples(rows, cols, values[rows, cols].astype(float))
    chosen = ranking.ItemSettings(
        300.0, 300.0, 0.0, 0.5, similar={300.0: 0.3}, weights={1.0: 0.25, 0.5: 0.3}, lifts={1.0: 0.5, 0.5: 0.0}
    )
    assert isinstance(fit_item_model(ratings, chosen), SplitItemItem)  # exact: weighted similar lists
    monkeypatch.setattr(ranking, "ITEM_MODEL_LIMIT", 0)  # neither the catalogue nor a head is exact
    model = fit_item_model(ratings, chosen)
    assert isinstance(model, LowRankItemItem)  # one model: same penalty, no weight
    assert model.similar_blend == 0.5 and model.settings is not None and model.settings.similar_weight == 1.0
    facts = model.facts()
    assert facts["similar_weight"] == 1.0 and facts["item_tuning"]["similar_ndcg"] == {"300.0": 0.25}


def test_implicit_feedback_is_never_weighted():
    """Nothing rated >= 4: every rating counts as chosen, so there is no weight to try."""
    train, _ = taste_catalogue()
    ones = train.csr.copy()
    ones.data[:] = 1.0
    settings = choose_item_settings(ones, seed=0)
    assert settings.similar_weight == 1.0 and set(settings.weights) == {1.0} == set(settings.lifts)


def test_the_exact_budget_grows_with_the_ratings(monkeypatch):
    """1 s up to 12.5 M ratings, then in proportion (about 4 % of a retrain); a catalogue
    whose head alone fits the floor is solved whole when its ratings buy three times it."""
    assert ranking.exact_budget(100_000) == ranking.exact_budget(12_500_000) == ranking.EXACT_SECONDS
    assert ranking.exact_budget(25_000_000) == pytest.approx(2 * ranking.EXACT_SECONDS)
    x = pattern(400, 1_500, 0.03, seed=2)
    rows, cols = x.nonzero()
    ratings = RatingMatrix.from_triples(rows, cols, np.full(len(rows), 4.0))
    whole = ranking.exact_seconds(x.getnnz(axis=1), 1_500)
    monkeypatch.setattr(ranking, "EXACT_SECONDS", whole / 2)
    head = affordable_head(ranking.rated_by(ratings.csr))
    assert head is not None and len(head) < 1_500 and isinstance(fit_item_model(ratings, 50.0), HeadItemItem)
    monkeypatch.setattr(ranking, "BUDGET_RATINGS", x.nnz / 3)  # these ratings now buy 3 x the floor
    assert isinstance(fit_item_model(ratings, 50.0), ExactItemItem)

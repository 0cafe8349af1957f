"""One default for every size: the plan the ALS solver makes from the data's size, the
implicit priors' truncated SVD against the exact one, the time budget, the sampled
train RMSE, and top-K blocks on several threads against one."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

import recsql
from recsql.algorithms.outputs import recommendation_lists, similar_lists
from recsql.algorithms.ranking import LowRankItemItem, rated_by
from recsql.algorithms.solvers import als, bayes, make_solver
from recsql.algorithms.solvers.als import DRAW_BUDGET, MAX_SAMPLES, plan_sampler
from recsql.algorithms.solvers.bayes import ImplicitLink
from recsql.algorithms.solvers.sweeps import Side
from recsql.algorithms.sparse import top_singular
from recsql.data.ratings import ratings_from_file
from recsql.errors import InvalidParameter
from recsql.evaluation.metrics import TRAIN_SAMPLE, accuracy_metrics, score
from recsql.threads import parallel_blocks, using_threads
from tests.helpers import low_rank_ratings


def test_the_draws_shrink_as_the_ratings_grow():
    small = plan_sampler(943, 1682, 80_000)
    assert (small.samples, small.burn_in, small.implicit, small.implicit_rank) == (MAX_SAMPLES, 10, True, 64)
    middle = plan_sampler(13_000, 4_700, 2_000_000)
    assert (middle.samples, middle.burn_in, middle.implicit) == (9, 3, True)  # the README's figures
    # The budget holds, the implicit priors' SVD charged as IMPLICIT_DRAWS draws.
    assert (middle.samples + middle.burn_in + als.IMPLICIT_DRAWS) * 2_000_000 <= DRAW_BUDGET
    # Where the SVD would leave too few draws, the draws go without it.
    tight = plan_sampler(32_508, 11_809, 4_500_000)
    assert tight.samples >= 4 and not tight.implicit and tight.implicit_rank is None
    large = plan_sampler(162_541, 59_047, 25_000_000)
    assert (large.samples, large.burn_in, large.implicit) == (0, 0, False)
    assert "plain ALS" not in large.reason and "fewer than" in large.reason
    # All 120 draws up to about 300,000 ratings (--samples' help).
    assert plan_sampler(3_000, 3_000, 289_000).samples == MAX_SAMPLES
    assert plan_sampler(3_000, 3_000, 300_000).samples < MAX_SAMPLES
    # Plain ALS from about 6.7 M ratings (the docstring's and --samples' help's figure).
    assert plan_sampler(40_000, 15_000, 6_600_000).samples == 4
    assert plan_sampler(40_000, 15_000, 6_700_000).samples == 0
    # What the caller gives is kept.
    assert plan_sampler(162_541, 59_047, 25_000_000, samples=7).samples == 7
    assert plan_sampler(943, 1682, 80_000, implicit=False).implicit is False


def test_the_solver_says_and_stores_its_plan():
    plain = make_solver("als")
    line = plain.plan(162_541, 59_047, 25_000_000)
    assert line.startswith("plain ALS, 10 features, 5 sweeps")
    assert plain.params()["samples"] == 0 and plain.params()["features"] == 10
    assert plain.params()["max_iterations"] == 5 and "rating-draws" in line
    bayesian = make_solver("als", features=8)
    line = bayesian.plan(943, 1682, 80_000)
    assert "Bayesian ALS, 8 features, 120 draws after 10 burn-in, implicit priors (rank 64)" in line
    # An explicit --samples 0 keeps the solver's own shape (6 features, 10 sweeps).
    given = make_solver("als", samples=0)
    assert given.plan(162_541, 59_047, 25_000_000).startswith("plain ALS, 6 features, 10 sweeps")
    # Before a plan, the stored parameters say what is left to the data.
    assert make_solver("als").params()["samples"] == "auto"


def test_train_prints_and_stores_the_plan(engine, run):
    recsql.generate(engine, ratings=3000, users=120, movies=80)
    out = run("train", "--max-iterations", 2).output
    assert "fit: Bayesian ALS, 6 features, 120 draws after 10 burn-in, implicit priors" in out
    model = recsql.list_models(engine)[0]
    assert model.params["samples"] == 120 and "rating-draws" in model.params["plan"]
    assert model.metrics["samples"] == 120


def test_truncated_singular_vectors_match_the_exact_ones():
    pattern = rated_by(low_rank_ratings(n_users=60, n_movies=40, density=0.3).csr)
    counts = np.diff(pattern.indptr)
    f = sp.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ pattern
    exact, exact_fv = bayes._exact_singular(f.tocsr())
    order = np.argsort(exact)[::-1]
    full, full_fv, full_v = top_singular(f.tocsr(), rank=40, power=3)
    np.testing.assert_allclose(f @ full_v, full_fv, atol=1e-4)  # A V = U S, and V is what the item model uses
    np.testing.assert_allclose(full, exact[order], rtol=1e-3, atol=1e-5)
    # F V V^T F^T = F F^T whatever the signs and rotations of equal singular values.
    np.testing.assert_allclose(full_fv @ full_fv.T, exact_fv @ exact_fv.T, atol=1e-3)
    top, _, _ = top_singular(f.tocsr(), rank=5, power=3)
    np.testing.assert_allclose(top, exact[order][:5], rtol=1e-2)


def test_truncated_implicit_priors_fit_as_well_as_exact_ones(ml100k, monkeypatch):
    """The solver's rank-64 priors against the exact SVD's, on MovieLens 100K u1."""
    train, test = ratings_from_file(ml100k / "u1.base"), ratings_from_file(ml100k / "u1.test")
    links: list[int] = []
    original = ImplicitLink.__init__

    def counting(self, blocks, d, rank=None, seed=0):
        original(self, blocks, d, rank, seed)
        links.append(self.fv.shape[1])

    monkeypatch.setattr(ImplicitLink, "__init__", counting)
    truncated = score(make_solver("als").fit(train), test).rmse
    assert links == [als.IMPLICIT_RANK, als.IMPLICIT_RANK]  # both sides truncated
    monkeypatch.setattr(als, "IMPLICIT_RANK", None)  # the exact SVD
    exact = score(make_solver("als").fit(train), test).rmse
    assert links[2:] == [train.n_users, train.n_users]  # F F^T is the smaller side
    assert truncated <= exact + 0.002, (truncated, exact)


def test_a_time_budget_bounds_the_draws():
    matrix = low_rank_ratings(n_users=400, n_movies=300, density=0.3)
    roomy = make_solver("als", time_budget=60.0)
    assert "up to 120 draws within 60 s" in roomy.plan(matrix.n_users, matrix.n_movies, matrix.nnz)
    assert roomy.fit(matrix).info["samples"] == MAX_SAMPLES
    tight = make_solver("als", time_budget=1e-6).fit(matrix)
    assert tight.info["samples"] == 0  # no time left after the ALS sweeps: plain ALS
    with pytest.raises(InvalidParameter, match="time_budget"):
        make_solver("als", time_budget=0)
    with pytest.raises(InvalidParameter, match="does not take time_budget"):
        make_solver("cg", time_budget=5)


def test_no_draw_starts_after_the_deadline():
    """Past the deadline the sampler stops once one draw is averaged (after its burn-in);
    without one it takes every draw asked for."""
    matrix = low_rank_ratings(n_users=60, n_movies=40, density=0.4)
    centred = matrix.with_values(matrix.values - matrix.values.mean())
    rng = np.random.default_rng(0)
    users = np.hstack([rng.normal(0, 0.1, (matrix.n_users, 2)), np.zeros((matrix.n_users, 1))])
    movies = np.hstack([rng.normal(0, 0.1, (matrix.n_movies, 2)), np.zeros((matrix.n_movies, 1))])
    for deadline, expected in ((None, 20), (time.monotonic() - 1, 1)):
        draws: list[int] = []
        averaged = bayes.gibbs_average(
            Side(centred),
            Side(centred.T.tocsr()),
            users,
            movies,
            samples=20,
            burn_in=3,
            stored_rank=4,
            implicit=False,
            rng=rng,
            step=draws.append,
            deadline=deadline,
        )
        assert averaged["samples"] == expected and len(draws) == 3 + expected


def test_time_budget_reaches_the_stored_run(engine, run):
    recsql.generate(engine, ratings=3000, users=120, movies=80)
    run("train", "--time-budget", 30)
    assert recsql.list_models(engine)[0].params["time_budget"] == 30


def test_train_rmse_on_a_sample_above_its_size():
    matrix = low_rank_ratings(n_users=200, n_movies=150, density=0.5)
    factors = make_solver("als", samples=0, features=2).fit(matrix)
    full = accuracy_metrics(factors, matrix, None)
    assert full["n_train"] == matrix.nnz and full["train_sampled"] is False
    assert TRAIN_SAMPLE == 1_000_000  # the README's "a sample of a million"
    sampled = accuracy_metrics(factors, matrix, None, train_sample=2000)
    assert sampled["n_train"] == 2000 and sampled["train_sampled"] is True
    assert abs(sampled["train_rmse"] - full["train_rmse"]) < 0.1 * full["train_rmse"]
    assert sampled["train_rmse"] != full["train_rmse"]


def test_lists_on_several_threads_equal_one_thread(monkeypatch):
    monkeypatch.setattr("recsql.algorithms.topk.BLOCK_CELLS", 2000)  # many blocks
    matrix = low_rank_ratings(n_users=300, n_movies=120, density=0.2)
    factors = make_solver("als", samples=0, features=3).fit(matrix)
    items = LowRankItemItem.fit(rated_by(matrix.csr), 50.0, rank=8)
    answers = []
    for threads in (1, 3):
        steps: list[int] = []
        with using_threads(threads):
            recommended = recommendation_lists(factors, items, matrix.csr, 10, steps.append)
            similar = similar_lists(factors, items, 5, "items")
            cosine = similar_lists(factors, None, 5, "cosine")
            by_rating = factors.recommend(matrix.csr, 10)
        assert len(steps) == -(-300 // (2000 // 120))  # one step per block, whatever the threads
        lists = (recommended.indices, recommended.scores, recommended.predicted)
        answers.append((lists, similar, cosine, by_rating))
    for one, three in zip(*answers):
        for a, b in zip(one, three):
            np.testing.assert_array_equal(a, b)


def test_threads_cap_the_blas_library_too():
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    assert blas_threads(), "numpy's BLAS is not visible to threadpoolctl"
    with using_threads(1):
        assert set(blas_threads()) == {1}
        seen: list[list[int]] = []
        with using_threads(2):
            parallel_blocks(range(4), lambda start: seen.append(blas_threads()))
        assert all(set(threads) == {1} for threads in seen)  # one BLAS thread per block


def test_the_sweeps_solve_rows_on_several_threads_to_the_same_model(monkeypatch):
    """The per-row systems of ALS and of the sampler's draws are solved in row blocks on
    threads; the noise is drawn before, in one stream, so the model does not change."""
    from recsql.algorithms.solvers import sweeps

    monkeypatch.setattr(sweeps, "PARALLEL_ROWS", 10)
    blocks: list[int] = []
    original = sweeps.parallel_blocks

    def counting(starts, work, step=None):
        blocks.append(len(starts))
        original(starts, work)

    monkeypatch.setattr(sweeps, "parallel_blocks", counting)
    matrix = low_rank_ratings(n_users=120, n_movies=90, density=0.3)
    fits = []
    for threads in (1, 3):
        with using_threads(threads):
            fits.append(make_solver("als", samples=5, features=3).fit(matrix))
    assert set(blocks) == {1, 3}  # both ways were taken
    for name in ("user_factors", "movie_factors", "user_bias", "movie_bias"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))


def test_a_failing_block_raises_in_the_caller():
    def work(start: int) -> None:
        if start == 3:
            raise ValueError("block 3 failed")

    with using_threads(2), pytest.raises(ValueError, match="block 3 failed"):
        parallel_blocks(range(6), work)

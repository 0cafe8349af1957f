"""recsql uses the cores it may use: affinity, a cgroup quota, --threads, RECSQL_THREADS."""

from __future__ import annotations

import os

import numpy as np
import pytest

import recsql
from recsql.algorithms.solvers import als
from recsql.algorithms.sparse import PARALLEL_CELLS
from recsql.errors import InvalidParameter
from recsql.threads import THREADS_ENV, available_cores, thread_count, using_threads


def test_the_cores_this_process_may_use(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(tmp_path / "none") == affinity  # no cgroup quota file
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cores(tmp_path / "cpu.max") == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core: still one thread
    assert available_cores(tmp_path / "cpu.max") == 1
    (tmp_path / "cpu.max").write_text(f"{100000 * (affinity + 8)} 100000\n")  # a quota above affinity
    assert available_cores(tmp_path / "cpu.max") == affinity


def test_asked_then_environment_then_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert thread_count() == available_cores()
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3
    with using_threads(1):
        assert thread_count() == 1
    assert thread_count() == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(InvalidParameter, match=THREADS_ENV):
        thread_count()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidParameter):
            using_threads(bad).__enter__()  # type: ignore[arg-type]


def test_one_thread_and_several_fit_the_same_model(engine, run, monkeypatch):
    """The sweeps split rows into one block per thread; the answer does not depend on it."""
    recsql.generate(engine, ratings=PARALLEL_CELLS + 5000, users=6000, movies=800)
    blocks: list[int] = []
    original = als.Side.__init__

    def counting(self, ratings):
        original(self, ratings)
        blocks.append(len(self.blocks))

    monkeypatch.setattr(als.Side, "__init__", counting)
    one = recsql.train(engine, samples=0, features=4, threads=1)
    three = recsql.train(engine, samples=0, features=4, threads=3)
    assert blocks == [1, 1, 3, 3]  # users' and movies' sides, split as asked
    assert np.isclose(one.metrics["train_rmse"], three.metrics["train_rmse"], rtol=1e-5)
    assert "--threads" in run("train", "--help").output
    assert "x>=1" in run("train", "--threads", 0, ok=False).output


def test_row_blocks_multiply_as_one_matrix_on_any_number_of_blocks(monkeypatch):
    """Each block writes its own rows of one result: the same product as scipy's, for
    the pattern and for other values in its cells, whatever the number of blocks."""
    import scipy.sparse as sp

    from recsql.algorithms import sparse

    rng = np.random.default_rng(0)
    matrix = sp.random(300, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    dense, values = rng.normal(size=(40, 5)).astype(np.float32), rng.normal(size=matrix.nnz)
    monkeypatch.setattr(sparse, "PARALLEL_CELLS", 1)
    for threads in (1, 3):
        with using_threads(threads):
            blocks = sparse.RowBlocks(matrix)
            assert len(blocks.blocks) == threads
            np.testing.assert_allclose(blocks @ dense, matrix @ dense, rtol=1e-5)
            with_values = sp.csr_matrix((values, matrix.indices, matrix.indptr), shape=matrix.shape)
            product = blocks.times(dense, values)
            assert product.dtype == np.float64 and product.shape == (300, 5)
            np.testing.assert_allclose(product, with_values @ dense, rtol=1e-5)

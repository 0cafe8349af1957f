"""Sparse x dense products on every core the process may use, and the truncated SVD
built on them.

scipy multiplies a CSR matrix by a dense one in a single thread, but without holding
the GIL, so row blocks of about equal numbers of cells multiply at once on a thread
pool.  The blocks are cut once (views of the matrix's arrays, no copy) and reused: the
ALS sweeps (:class:`recsql.algorithms.solvers.sweeps.Side`), the implicit priors' SVD and
the low-rank item model multiply the same matrix many times.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsql.threads import parallel_blocks, thread_count

# Below this many cells one thread is faster than handing blocks out.
PARALLEL_CELLS = 500_000


def row_cuts(indptr: np.ndarray, parts: int) -> list[int]:
    """Row boundaries ``[0, ..., n_rows]`` cutting a CSR matrix into at most ``parts``
    blocks of about equal numbers of stored cells."""
    n_rows, nnz = len(indptr) - 1, int(indptr[-1])
    cuts = np.searchsorted(indptr, np.linspace(0, nnz, parts + 1)[1:-1])
    return [0, *sorted(set(int(c) for c in cuts) - {0, n_rows}), n_rows]


class RowBlocks:
    """A CSR matrix cut into row blocks once, multiplied block by block on threads.

    One block below :data:`PARALLEL_CELLS` stored cells, else one per thread
    (:func:`recsql.threads.thread_count`).
    """

    def __init__(self, matrix: sp.csr_matrix):
        matrix = sp.csr_matrix(matrix)
        self.shape = matrix.shape
        self.indices, self.indptr = matrix.indices, matrix.indptr
        self.bounds = row_cuts(matrix.indptr, 1 if matrix.nnz < PARALLEL_CELLS else thread_count())
        self.blocks = [self._block(matrix.data, start, stop) for start, stop in zip(self.bounds[:-1], self.bounds[1:])]

    def _block(self, data: np.ndarray, start: int, stop: int) -> sp.csr_matrix:
        lo, hi = self.indptr[start], self.indptr[stop]
        return sp.csr_matrix(
            (data[lo:hi], self.indices[lo:hi], self.indptr[start : stop + 1] - lo), shape=(stop - start, self.shape[1])
        )

    def times(self, dense: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The matrix (or, given ``values``, the same cells holding those) @ ``dense``,
        each block writing its own rows of the result (:func:`recsql.threads.parallel_blocks`)."""
        cells = self.blocks[0].dtype if values is None else values.dtype
        result = np.empty((self.shape[0], *dense.shape[1:]), dtype=np.result_type(cells, dense.dtype))

        def one(number: int) -> None:
            start, stop = self.bounds[number], self.bounds[number + 1]
            block = self.blocks[number] if values is None else self._block(values, start, stop)
            result[start:stop] = block @ dense

        parallel_blocks(range(len(self.blocks)), one)
        return result

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        return self.times(dense)


def top_singular(
    matrix: sp.csr_matrix, rank: int, seed: int = 0, power: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``rank`` largest squared singular values s^2 of a sparse matrix A = U S V^T,
    with A V (= U S) and V.

    Halko, Martinsson & Tropp's randomized range finder with ``power`` subspace
    iterations: A is only multiplied (float32, on every core, with rank + 16 columns),
    never densified, so the cost grows with its cells, not with rows x columns.
    """
    n_rows, n_cols = matrix.shape
    rank = max(1, min(rank, n_rows, n_cols))
    width = min(rank + 16, n_rows, n_cols)
    a = RowBlocks(matrix.astype(np.float32))
    a_t = RowBlocks(matrix.T.astype(np.float32).tocsr())
    basis, _ = np.linalg.qr(a @ np.random.default_rng(seed).normal(size=(n_cols, width)).astype(np.float32))
    for _ in range(power):
        basis, _ = np.linalg.qr(a @ (a_t @ basis))
    small = np.asarray(a_t @ basis, dtype=np.float64).T  # width x n_cols = Q^T A
    left, sigma, right_t = np.linalg.svd(small, full_matrices=False)
    av = basis.astype(np.float64) @ (left[:, :rank] * sigma[:rank])  # Q U_b S = U S
    return sigma[:rank] ** 2, av, right_t[:rank].T

"""Sparse x dense products on every core the process may use.

scipy multiplies a CSR matrix by a dense one in a single thread, but without holding
the GIL, so row blocks of about equal numbers of cells multiply at once on a thread
pool.  The blocks are cut once and reused: the ALS sweeps
(:mod:`recsql.model.solvers.sweeps`), the implicit priors' SVD and the low-rank
item model multiply the same matrix many times.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from recsql.threads import thread_count

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

    ``threads``: :func:`recsql.threads.thread_count` unless given; one block below
    :data:`PARALLEL_CELLS` stored cells.
    """

    def __init__(self, matrix: sp.csr_matrix, threads: int | None = None):
        matrix = sp.csr_matrix(matrix)
        parts = 1 if matrix.nnz < PARALLEL_CELLS else (threads or thread_count())
        bounds = row_cuts(matrix.indptr, parts)
        self.shape = matrix.shape
        self.blocks = [matrix[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        if len(self.blocks) == 1:
            return np.asarray(self.blocks[0] @ dense)
        with ThreadPoolExecutor(max_workers=len(self.blocks)) as pool:
            return np.vstack(list(pool.map(lambda block: np.asarray(block @ dense), self.blocks)))

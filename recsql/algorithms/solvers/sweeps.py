"""One half-sweep's algebra, shared by ALS and the Gibbs sampler: the ratings in one
orientation (users x movies or movies x users) and the normal equations of every row
at once, from sparse products (no Python loop over rows or ratings).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.sparse import RowBlocks
from recsql.threads import parallel_blocks, thread_count


def augmented(other: np.ndarray) -> np.ndarray:
    """The partner side as [factors, 1] in float32: the 1 multiplies this side's bias."""
    aug = other.astype(np.float32)
    aug[:, -1] = 1.0
    return aug


class Side(RowBlocks):
    """One orientation of the ratings (users x movies, or movies x users), built once per
    fit: the sparsity pattern as :class:`~recsql.algorithms.sparse.RowBlocks` (row blocks
    multiplied on threads), and the rating values (minus the mean) to put in its cells.
    The big products run in float32: they are memory-bound, and the small per-row
    systems are solved in float64.
    """

    def __init__(self, ratings: sp.csr_matrix):
        super().__init__(
            sp.csr_matrix(
                (np.ones(ratings.nnz, dtype=np.float32), ratings.indices, ratings.indptr), shape=ratings.shape
            )
        )
        self.data = ratings.data
        self.values32 = ratings.data.astype(np.float32)
        self.sum_squares = float(ratings.data @ ratings.data)


def normal_equations(side: Side, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-row Gram matrices sum q~ q~^T, right-hand sides sum t q~ (t: rating minus the
    mean and the partner's bias b), and sum t^2, for all rows at once.

    Two products, no per-cell work: the pattern times [q~ q~^T (upper half), b q~, b^2]
    and the ratings times [q~, b], since sum t q~ = sum r q~ - sum b q~ and
    sum t^2 = sum r^2 - 2 sum r b + sum b^2 (gathering each cell's b was a third of a
    sweep at 25 M ratings).
    """
    aug = augmented(other)
    bias = other[:, -1].astype(np.float32)
    d = aug.shape[1]
    upper_i, upper_j = np.triu_indices(d)  # the Gram matrices are symmetric: half the work
    n_upper = len(upper_i)
    by_pattern = side.times(np.hstack([aug[:, upper_i] * aug[:, upper_j], aug * bias[:, None], (bias**2)[:, None]]))
    by_values = side.times(np.hstack([aug, bias[:, None]]), side.values32)
    gram = np.empty((side.shape[0], d, d))
    gram[:, upper_i, upper_j] = by_pattern[:, :n_upper]
    gram[:, upper_j, upper_i] = by_pattern[:, :n_upper]
    rhs = by_values[:, :d].astype(np.float64) - by_pattern[:, n_upper : n_upper + d]
    tt = side.sum_squares - 2 * by_values[:, d].sum(dtype=np.float64) + by_pattern[:, -1].sum(dtype=np.float64)
    return gram, rhs, float(tt)


def squared_error(gram: np.ndarray, rhs: np.ndarray, tt: float, x: np.ndarray) -> float:
    """sum over cells of (t - x.q~)^2 = sum t^2 - 2 x.rhs + x^T G x, without touching cells."""
    return float(tt - 2 * np.einsum("ij,ij->", x, rhs) + np.einsum("ij,ijk,ik->", x, gram, x))


# Below this many rows a side's small systems are solved in one go: handing blocks to
# threads costs more than it saves.
PARALLEL_ROWS = 20_000


def by_row_blocks(n_rows: int, solve: Callable[[int, int], None]) -> None:
    """Call ``solve(start, stop)`` over row ranges covering ``n_rows``, on the pool of
    :func:`recsql.threads.parallel_blocks` (numpy's batched LAPACK runs without the
    GIL).  Each call must write rows ``start:stop`` only; the answer does not depend on
    the number of threads."""
    parts = thread_count() if n_rows >= PARALLEL_ROWS else 1
    size = -(-n_rows // parts)
    parallel_blocks(range(0, n_rows, size), lambda start: solve(start, min(n_rows, start + size)))

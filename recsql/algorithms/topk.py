"""Selecting each row's K largest scores fast, and cutting score matrices into blocks.

Retrieval (:mod:`recsql.algorithms.factors`) scores a block of rows against every movie at a
time, so memory stays ``block x n_movies`` however large the catalogue, and then keeps
each row's best K with :func:`top_k_largest`, which avoids a full argpartition of every
row.  Ties are broken by the smaller column index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BLOCK_CELLS = 8_000_000  # scores per block: 32 MB of float32
GROUP = 32  # candidate groups of top_k_largest


class TopK(NamedTuple):
    """Column indices and scores of each row's best entries, best first (``n_rows x K``)."""

    indices: np.ndarray
    scores: np.ndarray


def top_k_largest(scores: np.ndarray, k: int) -> TopK:
    """Column indices and values of each row's ``k`` largest scores, best first.

    Rather than partially sorting every row, the columns are split into ``n / GROUP``
    strided groups (column j in group j mod n_groups); a row's k largest values lie in
    the k groups with the largest maxima (each of those groups holds a value at least as
    large as any value of a group outside them), so only those k x GROUP candidates are
    partitioned.  The group maxima are one vectorized reduction.  -inf marks excluded cells.
    """
    rows, n = scores.shape
    k = min(k, n)
    n_groups = n // GROUP
    candidates: np.ndarray
    if n_groups <= 2 * k:
        candidates = np.broadcast_to(np.arange(n), (rows, n))
    else:
        full = n_groups * GROUP
        maxima = scores[:, :full].reshape(rows, GROUP, n_groups).max(axis=1)
        groups = np.argpartition(maxima, n_groups - k, axis=1)[:, n_groups - k :]
        candidates = (groups[:, :, None] + np.arange(GROUP) * n_groups).reshape(rows, -1)
        if full < n:  # the last n - full columns are in no group: always candidates
            tail = np.broadcast_to(np.arange(full, n), (rows, n - full))
            candidates = np.concatenate([candidates, tail], axis=1)
    values = np.take_along_axis(scores, candidates, axis=1)
    width = values.shape[1]
    best = np.argpartition(values, width - k, axis=1)[:, width - k :]
    index = np.take_along_axis(candidates, best, axis=1)
    value = np.take_along_axis(values, best, axis=1)
    order = np.lexsort((index, -value), axis=1)
    return TopK(np.take_along_axis(index, order, axis=1), np.take_along_axis(value, order, axis=1))


def block_rows(n_columns: int) -> int:
    """How many rows of ``n_columns`` scores one block holds."""
    return max(1, BLOCK_CELLS // max(n_columns, 1))


def block_count(n_rows: int, n_columns: int) -> int:
    """How many blocks (and progress steps) scoring ``n_rows`` rows against ``n_columns`` takes."""
    return -(-n_rows // block_rows(n_columns))

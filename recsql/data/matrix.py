"""Ratings as a sparse user x movie matrix, and the one place ids are mapped.

The tutorial pivots its ratings into a dense users x movies frame; this is the same
pivot, sparse: rows are users in ascending id order, columns are movies in ascending
id order (so solvers that seed their start from row order reproduce the tutorial), and
only the known cells are stored.  Explicit zero ratings are kept as known cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsql.errors import InvalidParameter

DuplicatePolicy = Literal["max", "mean", "last"]
DUPLICATE_POLICIES: tuple[str, ...] = ("max", "mean", "last")


@dataclass(frozen=True)
class RatingMatrix:
    """Known ratings of ``n_users`` users for ``n_movies`` movies.

    ``user_ids[row]`` and ``movie_ids[col]`` are the external ids; ``rows``, ``cols`` and
    ``values`` list the known cells sorted by (row, col), and ``csr`` holds the same cells.
    """

    user_ids: np.ndarray
    movie_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_movies)

    @property
    def csr(self) -> sp.csr_matrix:
        return self.with_values(self.values)

    def with_values(self, data: np.ndarray) -> sp.csr_matrix:
        """A CSR matrix with this matrix's pattern and ``data`` in place of the ratings."""
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rows, minlength=self.n_users), out=indptr[1:])
        return sp.csr_matrix((data, self.cols, indptr), shape=self.shape)

    @classmethod
    def from_triples(
        cls,
        user_ids: np.ndarray,
        movie_ids: np.ndarray,
        values: np.ndarray,
        duplicates: DuplicatePolicy = "max",
    ) -> RatingMatrix:
        """Build the matrix from parallel arrays, resolving repeated (user, movie) pairs.

        ``max`` keeps the highest rating (the tutorial's ``aggfunc=np.max``), ``mean``
        averages them, ``last`` keeps the one that comes last in the input order.
        """
        if duplicates not in DUPLICATE_POLICIES:
            raise InvalidParameter(f"duplicates must be one of {DUPLICATE_POLICIES}, not {duplicates!r}")
        user_ids = np.asarray(user_ids, dtype=np.int64)
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        users, rows = _dense_index(user_ids)
        movies, cols = _dense_index(movie_ids)
        key = rows.astype(np.int64) * max(len(movies), 1) + cols
        del rows, cols
        if duplicates == "mean":
            unique_keys, inverse = np.unique(key, return_inverse=True)
            sums = np.bincount(inverse, weights=values)
            kept_values = sums / np.bincount(inverse)
        else:
            # A stable sort by key keeps each key's ratings in input order (and is fast on
            # the nearly sorted keys a table read by id gives); then each run of equal
            # keys keeps its largest or its last rating.
            order = np.argsort(key, kind="stable")
            sorted_keys = key[order]
            sorted_values = values[order]
            del order
            first = np.ones(len(sorted_keys), dtype=bool)
            first[1:] = sorted_keys[1:] != sorted_keys[:-1]
            starts = np.flatnonzero(first)
            unique_keys = sorted_keys[starts]
            if len(starts) == len(sorted_keys):
                kept_values = sorted_values  # no repeated pair
            elif duplicates == "max":
                kept_values = np.maximum.reduceat(sorted_values, starts)
            else:
                kept_values = sorted_values[np.append(starts[1:], len(sorted_keys)) - 1]
        n_movies = max(len(movies), 1)
        index = np.int32 if max(len(users), len(movies)) < 2**31 else np.int64
        return cls(
            user_ids=users,
            movie_ids=movies,
            rows=(unique_keys // n_movies).astype(index),
            cols=(unique_keys % n_movies).astype(index),
            values=kept_values.astype(np.float64),
        )

    def cell_times(self, user_ids: np.ndarray, movie_ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        """When each known cell was rated, from the ratings it was built of (parallel
        ``user_ids``, ``movie_ids``, ``times``): a pair rated more than once takes its
        latest time, so a time split never puts a re-rated pair on both sides."""
        rows, known_users = self.user_index(user_ids)
        cols, known_movies = self.movie_index(movie_ids)
        if not (known_users & known_movies).all():
            raise ValueError("every rating's user and movie must be in the matrix")
        cells = self.rows.astype(np.int64) * max(self.n_movies, 1) + self.cols
        at = np.searchsorted(cells, rows.astype(np.int64) * max(self.n_movies, 1) + cols)
        times = np.asarray(times, dtype=np.float64)
        undated = np.isnan(times)
        latest = np.full(self.nnz, -np.inf)
        np.maximum.at(latest, at[~undated], times[~undated])
        latest[np.bincount(at[undated], minlength=self.nnz) > 0] = np.nan  # one undated rating: the pair's time unknown
        return latest

    def user_index(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each external user id, and a mask of which ids are known."""
        return lookup_ids(self.user_ids, ids)

    def movie_index(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column of each external movie id, and a mask of which ids are known."""
        return lookup_ids(self.movie_ids, ids)

    def subset(self, keep: np.ndarray) -> RatingMatrix:
        """The matrix of the cells where ``keep`` is true, ids re-mapped to those present."""
        return RatingMatrix.from_triples(
            self.user_ids[self.rows[keep]], self.movie_ids[self.cols[keep]], self.values[keep]
        )

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The known cells as (external user id, external movie id, rating) arrays."""
        return self.user_ids[self.rows], self.movie_ids[self.cols], self.values


def _dense_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids and each id's position among them (like np.unique with
    return_inverse), in linear time when the ids are small non-negative integers, as
    application ids usually are; otherwise by sorting."""
    if len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1_000_000:
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        distinct = np.flatnonzero(present)
        position = np.cumsum(present, dtype=np.int64) - 1
        return distinct.astype(np.int64), position[ids]
    distinct, inverse = np.unique(ids, return_inverse=True)
    return distinct, inverse.astype(np.int64)


DENSE_LOOKUP = 1_000  # ids looked up at once above which a table of positions pays
DENSE_SPAN = 4  # ... when the largest id is below this many times the ids and lookups together


def lookup_ids(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of external ``ids`` in the ascending ``sorted_ids``, and which are present.

    Unknown ids get an arbitrary in-range position; callers must apply the mask.  Many
    ids against dense ones (small non-negative integers, as catalogues number them) go
    through a table of positions, one gather instead of a binary search each: 100,000
    of them against MovieLens' movies in about a tenth of the time.
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = len(sorted_ids)
    if len(ids) > DENSE_LOOKUP and n and sorted_ids[0] >= 0 and sorted_ids[-1] < DENSE_SPAN * (n + len(ids)):
        table = np.zeros(int(sorted_ids[-1]) + 2, dtype=np.int64)  # the last cell: every id beyond
        table[sorted_ids] = np.arange(1, n + 1)
        found = table[np.clip(ids, -1, len(table) - 1)]  # -1 (and negative ids) read the last cell: 0
        known = found > 0
        return np.where(known, found - 1, 0), known
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    known = (sorted_ids[pos] == ids) if len(sorted_ids) else np.zeros(len(ids), dtype=bool)
    return pos, known

"""The sparse pivot and its id maps."""

import numpy as np
import pandas as pd
import pytest

from recsql.data.matrix import RatingMatrix
from recsql.errors import InvalidParameter

USERS = np.array([30, 10, 10, 10, 20])
MOVIES = np.array([7, 5, 5, 9, 5])
VALUES = np.array([1.0, 4.0, 2.0, 0.0, 3.0])


@pytest.mark.parametrize("policy,expected", [("max", 4.0), ("mean", 3.0), ("last", 2.0)])
def test_duplicate_policies(policy, expected):
    m = RatingMatrix.from_triples(USERS, MOVIES, VALUES, duplicates=policy)
    assert m.user_ids.tolist() == [10, 20, 30] and m.movie_ids.tolist() == [5, 7, 9]
    dense = m.csr.toarray()
    assert dense[0, 0] == expected
    assert m.nnz == 4  # the duplicate pair is one cell; the explicit 0 rating is kept


def test_explicit_zero_is_a_known_cell():
    m = RatingMatrix.from_triples(USERS, MOVIES, VALUES)
    assert (0, 2) in set(zip(m.rows.tolist(), m.cols.tolist()))
    assert m.csr.nnz == 4


def test_lookup_marks_unknown_ids():
    m = RatingMatrix.from_triples(USERS, MOVIES, VALUES)
    pos, known = m.user_index(np.array([20, 99, 10, 1]))
    assert known.tolist() == [True, False, True, False]
    assert pos[known].tolist() == [1, 0]


def test_unknown_policy():
    with pytest.raises(InvalidParameter):
        RatingMatrix.from_triples(USERS, MOVIES, VALUES, duplicates="first")


@pytest.mark.parametrize("policy", ["max", "last", "mean"])
def test_duplicate_policies_against_pandas(policy):
    """Many repeated pairs in random order, against a pandas groupby of the same triples."""
    rng = np.random.default_rng(5)
    n = 5000
    users, movies = rng.integers(1, 40, n), rng.integers(1, 30, n)
    values = rng.integers(1, 11, n) / 2
    m = RatingMatrix.from_triples(users, movies, values, duplicates=policy)
    frame = pd.DataFrame({"u": users, "m": movies, "v": values})
    how = {"max": "max", "last": "last", "mean": "mean"}[policy]
    expected = frame.groupby(["u", "m"], sort=True)["v"].agg(how)
    got = pd.Series(m.values, index=pd.MultiIndex.from_arrays([m.user_ids[m.rows], m.movie_ids[m.cols]]))
    assert len(got) == len(expected) < n
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy())
    np.testing.assert_array_equal(got.index.get_level_values(0), expected.index.get_level_values(0))
    np.testing.assert_array_equal(got.index.get_level_values(1), expected.index.get_level_values(1))


def test_a_table_of_positions_finds_what_a_binary_search_finds():
    """Many ids against dense ones take the table; the answers are the search's."""
    from recsql.data import matrix

    rng = np.random.default_rng(7)
    sorted_ids = np.unique(rng.integers(0, 3_000, 1_500))
    ids = np.concatenate([rng.integers(-5, 3_200, 20_000), sorted_ids[[0, -1]], [-1, 2**40]])
    pos, known = matrix.lookup_ids(sorted_ids, ids)
    expected_known = np.isin(ids, sorted_ids)
    assert len(ids) > matrix.DENSE_LOOKUP and np.array_equal(known, expected_known)
    assert np.array_equal(sorted_ids[pos[known]], ids[known]) and ((pos >= 0) & (pos < len(sorted_ids))).all()
    few_pos, few_known = matrix.lookup_ids(sorted_ids, ids[:50])  # few ids: the binary search
    assert np.array_equal(few_known, expected_known[:50]) and np.array_equal(few_pos[few_known], pos[:50][known[:50]])

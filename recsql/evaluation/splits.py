"""Holding ratings out: a random fraction, K folds, or a fixed pair of files
(MovieLens' u1.base / u1.test).  Ratings come from the database or straight from files,
so a user can evaluate before importing anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import as_source, ratings_from_database, ratings_from_file
from recsql.data.source import Source
from recsql.errors import InvalidParameter

Split = tuple[RatingMatrix, RatingMatrix]


def holdout(
    engine: Engine | None = None,
    *,
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    test_fraction: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    duplicates: DuplicatePolicy = "max",
    source: Source | str | Path | None = None,
) -> list[Split]:
    """The (train, test) pairs an evaluation runs on; exactly one way of holding out.

    Ratings come from ``train_file``, else from the database (recsql's table, or the
    application's through ``source``: a Source or the path of its TOML file)."""
    ways = sum(x is not None for x in (test_file, test_fraction, folds))
    if ways != 1:
        raise InvalidParameter("give exactly one of --test-file, --test-fraction or --folds")
    if train_file is not None:
        ratings = ratings_from_file(train_file, duplicates)
    elif engine is not None:
        ratings = ratings_from_database(engine, duplicates, as_source(source))
    else:
        raise InvalidParameter("give --train FILE or a database with ratings")
    if test_file is not None:
        return [(ratings, ratings_from_file(test_file, duplicates))]
    if test_fraction is not None:
        return [split_random(ratings, test_fraction, seed)]
    assert folds is not None
    return split_folds(ratings, folds, seed)


def split_random(
    ratings: RatingMatrix, test_fraction: float, seed: int = 0
) -> Split:
    """Hold out ``test_fraction`` of the known cells at random (reproducible by ``seed``)."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameter("test_fraction must be between 0 and 1 (exclusive)")
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * ratings.nnz))
    if n_test == 0 or n_test == ratings.nnz:
        raise InvalidParameter(
            f"a test fraction of {test_fraction} of {ratings.nnz} ratings leaves "
            "an empty training or test set"
        )
    test = np.zeros(ratings.nnz, dtype=bool)
    test[rng.choice(ratings.nnz, size=n_test, replace=False)] = True
    return ratings.subset(~test), ratings.subset(test)


def split_folds(ratings: RatingMatrix, folds: int, seed: int = 0) -> list[Split]:
    """K-fold cross-validation: each known cell is in exactly one test fold."""
    if not 2 <= folds <= ratings.nnz:
        raise InvalidParameter(f"folds must be between 2 and the number of ratings, not {folds}")
    order = np.random.default_rng(seed).permutation(ratings.nnz)
    fold_of = np.empty(ratings.nnz, dtype=np.int64)
    fold_of[order] = np.arange(ratings.nnz) % folds
    return [(ratings.subset(fold_of != f), ratings.subset(fold_of == f)) for f in range(folds)]

"""Holding ratings out: a random fraction, K folds, or a fixed pair of files
(MovieLens' u1.base / u1.test).  Ratings come from the database or straight from files,
so a user can evaluate before importing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import as_source, ratings_from_database, ratings_from_file
from recsql.data.source import Source
from recsql.errors import InvalidParameter

Split = tuple[RatingMatrix, RatingMatrix]


@dataclass(frozen=True)
class Holdout:
    """Which ratings an evaluation fits and which it scores: ``train_file``, else the
    database's (recsql's table, or the application's through ``source``: a Source or the
    path of its TOML file), held out by exactly one of ``test_file``, ``test_fraction``
    or ``folds``."""

    train_file: str | Path | None = None
    test_file: str | Path | None = None
    test_fraction: float | None = None
    folds: int | None = None
    source: Source | str | Path | None = None

    def check(self) -> None:
        if sum(x is not None for x in (self.test_file, self.test_fraction, self.folds)) != 1:
            raise InvalidParameter("give exactly one of --test-file, --test-fraction or --folds")

    def pairs(self, engine: Engine | None, seed: int = 0, duplicates: DuplicatePolicy = "max") -> list[Split]:
        """The (train, test) pairs, split reproducibly by ``seed``."""
        self.check()
        if self.test_fraction is not None:
            check_fraction(self.test_fraction)
        if self.train_file is not None:
            ratings = ratings_from_file(self.train_file, duplicates)
        elif engine is not None:
            ratings = ratings_from_database(engine, duplicates, as_source(self.source))
        else:
            raise InvalidParameter("give --train FILE or a database with ratings")
        if self.test_file is not None:
            return [(ratings, ratings_from_file(self.test_file, duplicates))]
        if self.test_fraction is not None:
            return [split_random(ratings, self.test_fraction, seed)]
        assert self.folds is not None
        return split_folds(ratings, self.folds, seed)


def check_fraction(test_fraction: float) -> None:
    """Refuse a held-out share that is not a fraction (before anything is read)."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameter("test_fraction must be between 0 and 1 (exclusive)")


def split_random(ratings: RatingMatrix, test_fraction: float, seed: int = 0) -> Split:
    """Hold out ``test_fraction`` of the known cells at random (reproducible by ``seed``)."""
    check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * ratings.nnz))
    if n_test == 0 or n_test == ratings.nnz:
        raise InvalidParameter(
            f"a test fraction of {test_fraction} of {ratings.nnz} ratings leaves an empty training or test set"
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

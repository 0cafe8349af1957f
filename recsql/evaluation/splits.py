"""Holding ratings out: a random fraction, K folds, a fixed pair of files (MovieLens'
u1.base / u1.test), or by time: the latest fraction of all ratings (``split="time"``:
fit on the past, score the future) or each user's latest ``last_n``
(``"leave-last-n"``: their next movies).  Ratings come from the database or straight
from files, so a user can evaluate before importing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import Engine

from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import (
    as_source,
    ratings_from_database,
    ratings_from_file,
    timed_from_database,
    timed_from_file,
)
from recsql.data.source import Source
from recsql.errors import InvalidParameter

Split = tuple[RatingMatrix, RatingMatrix]
SplitKind = Literal["random", "time", "leave-last-n"]
SPLITS: tuple[SplitKind, ...] = ("random", "time", "leave-last-n")


@dataclass(frozen=True)
class Holdout:
    """Which ratings an evaluation fits and which it scores: ``train_file``, else the
    database's (recsql's table, or the application's through ``source``: a Source or the
    path of its TOML file).  ``split="random"`` holds out by exactly one of
    ``test_file``, ``test_fraction`` or ``folds``; ``"time"`` the latest
    ``test_fraction`` of the ratings; ``"leave-last-n"`` each user's latest ``last_n``
    (default 1) of users who have more."""

    train_file: str | Path | None = None
    test_file: str | Path | None = None
    test_fraction: float | None = None
    folds: int | None = None
    source: Source | str | Path | None = None
    split: SplitKind = "random"
    last_n: int | None = None

    def check(self) -> None:
        for name, path in (("train_file", self.train_file), ("test_file", self.test_file)):
            if path is not None and not isinstance(path, (str, Path)):
                frame = name.removesuffix("_file")
                raise InvalidParameter(
                    f"{name} is a file's path, not a {type(path).__name__}: give ratings in memory as {frame}="
                )
        given = {"--test-file": self.test_file, "--test-fraction": self.test_fraction, "--folds": self.folds}
        named = [name for name, value in given.items() if value is not None]
        if self.split not in SPLITS:
            raise InvalidParameter(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.split != "leave-last-n" and self.last_n is not None:
            raise InvalidParameter("--last-n goes with --split leave-last-n")
        if self.split == "random" and len(named) != 1:
            raise InvalidParameter("give exactly one of --test-file, --test-fraction or --folds")
        if self.split == "time" and named != ["--test-fraction"]:
            raise InvalidParameter("--split time holds out the latest --test-fraction of the ratings: give it alone")
        if self.split == "leave-last-n" and named:
            raise InvalidParameter(f"--split leave-last-n holds out each user's latest --last-n, not {named[0]}")
        if self.split != "random" and self.source is not None:
            raise InvalidParameter(
                f"--split {self.split} reads when ratings were made from recsql's ratings table or a file; "
                "import the source's ratings with their times first"
            )
        if self.test_fraction is not None:
            check_fraction(self.test_fraction)

    def pairs(self, engine: Engine | None, seed: int = 0, duplicates: DuplicatePolicy = "max") -> list[Split]:
        """The (train, test) pairs, split reproducibly by ``seed``."""
        self.check()
        if engine is None and self.train_file is None:
            raise InvalidParameter("give --train FILE or a database with ratings")
        if self.split != "random":
            if self.train_file is not None:
                matrix, times = timed_from_file(self.train_file, duplicates)
            else:
                assert engine is not None
                matrix, times = timed_from_database(engine, duplicates)
            return [split_timed(matrix, times, self.split, self.test_fraction, self.last_n, seed)]
        if self.train_file is not None:
            ratings = ratings_from_file(self.train_file, duplicates)
        else:
            assert engine is not None
            ratings = ratings_from_database(engine, duplicates, as_source(self.source))
        if self.test_file is not None:
            return [(ratings, ratings_from_file(self.test_file, duplicates))]
        if self.test_fraction is not None:
            return [split_random(ratings, self.test_fraction, seed)]
        assert self.folds is not None
        return split_folds(ratings, self.folds, seed)


def split_timed(
    ratings: RatingMatrix,
    times: np.ndarray | None,
    split: SplitKind,
    test_fraction: float | None = None,
    last_n: int | None = None,
    seed: int = 0,
) -> Split:
    """A time split of ``ratings`` by each cell's ``times`` (:meth:`RatingMatrix.cell_times`)."""
    if times is None or np.isnan(times).any():
        missing = ratings.nnz if times is None else int(np.isnan(times).sum())
        raise InvalidParameter(
            f"--split {split} needs when every rating was made, but {missing} of {ratings.nnz} ratings have no time"
        )
    if split == "time":
        assert test_fraction is not None
        return split_by_time(ratings, times, test_fraction, seed)
    return split_last_n(ratings, times, 1 if last_n is None else last_n, seed)


def split_by_time(ratings: RatingMatrix, times: np.ndarray, test_fraction: float, seed: int = 0) -> Split:
    """Hold out the latest ``test_fraction`` of the cells (ratings made at the same time
    ordered at random, reproducibly by ``seed``): fit on the past, score the future."""
    n_test = _held_count(ratings, test_fraction)
    order = np.lexsort((np.random.default_rng(seed).random(ratings.nnz), times))
    test = np.zeros(ratings.nnz, dtype=bool)
    test[order[ratings.nnz - n_test :]] = True
    return ratings.subset(~test), ratings.subset(test)


def split_last_n(ratings: RatingMatrix, times: np.ndarray, last_n: int = 1, seed: int = 0) -> Split:
    """Hold out each user's latest ``last_n`` cells (ties at random, by ``seed``), for
    every user with more than ``last_n``: the rest stay in training whole, so every
    held-out user is one the model knows."""
    if last_n < 1:
        raise InvalidParameter(f"last_n must be at least 1, not {last_n}")
    order = np.lexsort((np.random.default_rng(seed).random(ratings.nnz), times, ratings.rows))
    counts = np.bincount(ratings.rows, minlength=ratings.n_users)
    users = ratings.rows[order]
    from_end = np.cumsum(counts)[users] - 1 - np.arange(ratings.nnz)
    test = np.zeros(ratings.nnz, dtype=bool)
    test[order] = (from_end < last_n) & (counts[users] > last_n)
    if not test.any():
        raise InvalidParameter(f"no user has more than {last_n} ratings: nothing to hold out")
    return ratings.subset(~test), ratings.subset(test)


def _held_count(ratings: RatingMatrix, test_fraction: float) -> int:
    check_fraction(test_fraction)
    n_test = int(round(test_fraction * ratings.nnz))
    if n_test == 0 or n_test == ratings.nnz:
        raise InvalidParameter(
            f"a test fraction of {test_fraction} of {ratings.nnz} ratings leaves an empty training or test set"
        )
    return n_test


def check_fraction(test_fraction: float) -> None:
    """Refuse a held-out share that is not a fraction (before anything is read)."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameter("test_fraction must be between 0 and 1 (exclusive)")


def split_random(ratings: RatingMatrix, test_fraction: float, seed: int = 0) -> Split:
    """Hold out ``test_fraction`` of the known cells at random (reproducible by ``seed``)."""
    n_test = _held_count(ratings, test_fraction)
    rng = np.random.default_rng(seed)
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

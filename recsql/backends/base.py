"""The contract every compute backend meets.

A run (a retrain, or an evaluation's fold) goes read -> fit -> item model -> lists on
whichever backend it was given, through these hooks only:

* :meth:`Backend.plan` says, before the run's row exists, what the fit will do (reading
  the ratings first where the plan depends on their size, so an empty or unreadable
  table leaves no run behind);
* :meth:`Backend.session` opens what the fits share (nothing locally; a Spark session)
  and yields a :class:`Compute`, whose hooks read, fit and list.

Prediction, similarity and ranking are not the backend's: every backend returns
:class:`~recsql.algorithms.factors.Factors`, an :class:`~recsql.algorithms.ranking.ItemItem` and
the lists of :mod:`recsql.algorithms.outputs`, computed by the same code wherever it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Engine

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import Recommended
from recsql.algorithms.ranking import ItemItem, ItemPenalty
from recsql.algorithms.solvers import Solver
from recsql.algorithms.topk import TopK
from recsql.data.matrix import DuplicatePolicy, RatingMatrix
from recsql.data.ratings import ratings_from_database
from recsql.data.source import Source
from recsql.db.lock import WriterLock
from recsql.progress import Step


@dataclass
class RatingsAt:
    """Where a run's ratings are: recsql's ``ratings`` table, or the application's
    through ``source``, in ``engine``'s database, duplicates resolved by ``duplicates``.
    ``lock``: the writer lock a retrain holds (checked before a text-keyed source's new
    keys are stored).  :meth:`read` reads once; later calls return the same matrix."""

    engine: Engine
    duplicates: DuplicatePolicy = "max"
    source: Source | None = None
    lock: WriterLock | None = None
    _matrix: RatingMatrix | None = field(default=None, repr=False)

    def read(self) -> RatingMatrix:
        if self._matrix is None:
            self._matrix = ratings_from_database(self.engine, self.duplicates, self.source, self.lock)
        return self._matrix

    def forget(self) -> None:
        """Let go of the matrix read (the run holds it from here on, or no longer needs it)."""
        self._matrix = None


class Compute(ABC):
    """One session's hooks.  A hook's ``matrix`` is the ratings of the fit at hand (all
    of them, or a training share); what a backend keeps per matrix (Spark: a cached
    DataFrame) it lets go in :meth:`release`."""

    @abstractmethod
    def read(self, ratings: RatingsAt) -> RatingMatrix:
        """Every rating at ``ratings``, as a matrix on this machine."""

    @abstractmethod
    def fit(self, matrix: RatingMatrix, step: Step) -> Factors:
        """The rating model of ``matrix`` (``step(1)`` per iteration, for progress)."""

    @abstractmethod
    def items(self, matrix: RatingMatrix, metric: str, regularization: ItemPenalty) -> ItemItem | None:
        """The lists' item-item choice model of ``matrix`` (None unless ``metric`` is ``items``)."""

    @abstractmethod
    def similar(self, factors: Factors, items: ItemItem | None, k: int, metric: str, step: Step) -> TopK:
        """Every movie's ``k`` most similar movies."""

    @abstractmethod
    def recommended(
        self, factors: Factors, items: ItemItem | None, matrix: RatingMatrix, n: int, step: Step
    ) -> Recommended:
        """Every user's ``n`` best movies they have not rated in ``matrix``."""

    def release(self, matrix: RatingMatrix) -> None:  # noqa: B027 - optional hook
        """Let go of what was kept for ``matrix`` (nothing, unless the backend keeps something)."""


class Backend(ABC):
    """Where fits run, and the solver they run (its name and parameters are the run's)."""

    name: ClassVar[str]

    def __init__(self, solver: Solver):
        self.solver = solver

    @classmethod
    @abstractmethod
    def of(
        cls,
        solver: str,
        *,
        spark_master: str | None,
        spark_conf: Sequence[str] | Mapping[str, str] | None,
        **params: Any,
    ) -> Backend:
        """This backend fitting ``solver`` with ``params``, every option checked."""

    @abstractmethod
    def plan(self, ratings: RatingsAt) -> str:
        """What the fit will do, in a line (before the run's row exists)."""

    @abstractmethod
    def session(self, ratings: RatingsAt | None) -> AbstractContextManager[Compute]:
        """The hooks of one run, on ``ratings`` (None: the run brings its own matrices)."""

    def params(self) -> dict[str, Any]:
        """The parameters that define the result (stored with each run)."""
        return self.solver.params()

    def steps(self) -> int | None:
        """How many times a fit calls ``step`` (None: not known in advance)."""
        return self.solver.steps()

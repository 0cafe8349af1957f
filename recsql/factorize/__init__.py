"""Solvers: pure functions from a RatingMatrix to Factors.

``SOLVERS`` maps the names used by ``recsql train --solver`` to solver classes; each
takes its parameters as keyword arguments and implements :class:`Solver`.
"""

from __future__ import annotations

from typing import Any

from recsql.errors import InvalidParameter
from recsql.factorize.base import Factors, Solver
from recsql.factorize.cg import ConjugateGradient

SOLVERS: dict[str, type[Solver]] = {ConjugateGradient.name: ConjugateGradient}
DEFAULT_SOLVER = ConjugateGradient.name


def make_solver(name: str, **params: Any) -> Solver:
    """The solver called ``name`` with ``params``; unknown names raise ValueError."""
    try:
        cls = SOLVERS[name]
    except KeyError:
        raise InvalidParameter(f"unknown solver {name!r}; choose from {', '.join(SOLVERS)}") from None
    return cls(**params)


__all__ = ["Factors", "Solver", "SOLVERS", "DEFAULT_SOLVER", "make_solver", "ConjugateGradient"]

"""Solvers: pure functions from a RatingMatrix to Factors, one module per algorithm.

``SOLVERS`` maps the names used by ``recsql train --solver`` to solver classes; each
takes its parameters as keyword arguments (with its own defaults) and implements
:class:`Solver`.
"""

from __future__ import annotations

import inspect
from typing import Any

from recsql.algorithms.solvers.als import AlternatingLeastSquares
from recsql.algorithms.solvers.base import Solver
from recsql.algorithms.solvers.cg import ConjugateGradient
from recsql.errors import InvalidParameter

SOLVERS: dict[str, type[Solver]] = {
    AlternatingLeastSquares.name: AlternatingLeastSquares,
    ConjugateGradient.name: ConjugateGradient,
}
DEFAULT_SOLVER = AlternatingLeastSquares.name


def solver_parameters(name: str) -> dict[str, Any]:
    """The parameters solver ``name`` takes, with their defaults."""
    cls = _solver_class(name)
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"}


def make_solver(name: str, **params: Any) -> Solver:
    """The solver called ``name``; parameters left as None take the solver's defaults."""
    cls = _solver_class(name)
    accepted = solver_parameters(name)
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise InvalidParameter(
            f"the {name} solver does not take {', '.join(unknown)} (it takes {', '.join(sorted(accepted))})"
        )
    return cls(**given)


def _solver_class(name: str) -> type[Solver]:
    try:
        return SOLVERS[name]
    except KeyError:
        raise InvalidParameter(f"unknown solver {name!r}; choose from {', '.join(SOLVERS)}") from None


__all__ = [
    "Solver",
    "SOLVERS",
    "DEFAULT_SOLVER",
    "make_solver",
    "solver_parameters",
    "AlternatingLeastSquares",
    "ConjugateGradient",
]

"""Timing the phases of a long job, with a progress bar per phase on a terminal.

The pure code (solvers, neighbours) knows nothing of bars: it takes an optional
``step`` callback and calls it once per unit of work (an iteration, a block).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

Step = Callable[[int], object]


def no_step(_n: int = 1) -> None:
    """The step callback when nobody is watching."""


class Phases:
    """Times named phases into ``timings``; ``show`` draws a tqdm bar for each on stderr."""

    def __init__(self, show: bool = False):
        self.show = show
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, total: int | None = None) -> Iterator[Step]:
        bar = tqdm(total=total, desc=f"{name:<15}", unit="step", leave=False, disable=not self.show,
                   file=sys.stderr, dynamic_ncols=True)
        started = time.perf_counter()
        try:
            yield bar.update
        finally:
            bar.close()
            self.timings[name] = round(time.perf_counter() - started, 4)

    @staticmethod
    def summary_of(timings: dict[str, float]) -> str:
        """One line: every phase's seconds and the total."""
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in timings.items())
        return f"seconds: {parts} (total {sum(timings.values()):.2f})"


def terminal() -> bool:
    """Whether a person is watching (stderr is a terminal)."""
    return sys.stderr.isatty()

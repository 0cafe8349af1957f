"""Timing the phases of a long job, with a progress bar per phase on a terminal.

The pure code (solvers, neighbours) knows nothing of bars: it takes an optional
``step`` callback and calls it once per unit of work (an iteration, a block).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

log = logging.getLogger(__name__)

Step = Callable[[int], object]


def no_step(_n: int = 1) -> None:
    """The step callback when nobody is watching."""


# Fault injection for the crash tests: with RECSQL_STALL=PHASE (or PHASE:STEPS) a job
# announces "recsql: stalled at ..." on stderr and sleeps when it enters that phase (or
# after that many of its steps), so a test can kill a real process at a known point, or
# change the world under it and let it go on with SIGUSR1.
STALL_ENV = "RECSQL_STALL"
STALL_MARK = "recsql: stalled at"


def _stall_point(name: str) -> int | None:
    phase, _, steps = os.environ.get(STALL_ENV, "").partition(":")
    return int(steps or 0) if phase == name else None


def _stall(where: str) -> None:
    resumed = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda _number, _frame: resumed.set())
    print(f"{STALL_MARK} {where}", file=sys.stderr, flush=True)
    try:
        resumed.wait(3600)
    finally:
        signal.signal(signal.SIGUSR1, previous)


class Phases:
    """Times named phases into ``timings``; ``show`` draws a tqdm bar for each on stderr."""

    def __init__(self, show: bool = False):
        self.show = show
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, total: int | None = None) -> Iterator[Step]:
        bar = tqdm(
            total=total,
            desc=f"{name:<15}",
            unit="step",
            leave=False,
            disable=not self.show,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        started = time.perf_counter()
        stall = _stall_point(name)
        update: Step = bar.update
        if stall == 0:
            _stall(name)
        elif stall is not None:
            done = 0

            def update(n: int = 1) -> object:
                nonlocal done
                done += n
                if done >= stall:
                    _stall(f"{name}:{done}")
                return bar.update(n)

        try:
            yield update
        finally:
            bar.close()
            # A phase entered again (a retrain's read: before and after its run exists) adds up.
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 4)
            log.info("%s: %.2f s", name, self.timings[name])

    @staticmethod
    def summary_of(timings: dict[str, float]) -> str:
        """One line: every phase's seconds and the total."""
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in timings.items())
        return f"seconds: {parts} (total {sum(timings.values()):.2f})"


def terminal() -> bool:
    """Whether a person is watching (stderr is a terminal)."""
    return sys.stderr.isatty()

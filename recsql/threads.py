"""How many threads recsql's parallel work uses: the cores this process may run on.

The count is, in order: what the caller asked for (``train(threads=N)``, ``--threads``),
else ``$RECSQL_THREADS``, else the cores the process may use: its CPU affinity, capped
by a cgroup v2 CPU quota (a container given 2 CPUs of a 16-core host gets 2).  It sizes
the ALS sweeps' row blocks, the PostgreSQL read and write connections.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from recsql.errors import InvalidParameter

THREADS_ENV = "RECSQL_THREADS"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_asked: ContextVar[int | None] = ContextVar("recsql_threads", default=None)


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its affinity, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return max(1, cores)


def check_threads(threads: object, what: str = "threads") -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidParameter(f"{what} must be a whole number of at least 1, not {threads!r}")
    return threads


def thread_count() -> int:
    """The threads to use now (see the module docstring)."""
    asked = _asked.get()
    if asked is not None:
        return asked
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            return check_threads(int(env), f"${THREADS_ENV}")
        except ValueError:
            raise InvalidParameter(f"${THREADS_ENV} must be a whole number, not {env!r}") from None
    return available_cores()


@contextmanager
def using_threads(threads: int | None) -> Iterator[int]:
    """Within the block, :func:`thread_count` is ``threads`` (None: unchanged)."""
    token = _asked.set(check_threads(threads) if threads is not None else _asked.get())
    try:
        yield thread_count()
    finally:
        _asked.reset(token)

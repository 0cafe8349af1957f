"""How many threads recsql's parallel work uses: the cores this process may run on.

The count is, in order: what the caller asked for (``train(threads=N)``, ``--threads``),
else ``$RECSQL_THREADS``, else the cores the process may use: its CPU affinity, capped
by a cgroup v2 CPU quota (a container given 2 CPUs of a 16-core host gets 2).  It sizes
the ALS sweeps' row blocks, the pool that scores blocks of top-K lists
(:func:`parallel_blocks`), the BLAS library's threads (:func:`using_threads` caps them)
and the PostgreSQL read and write connections.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from threadpoolctl import threadpool_limits

from recsql.errors import InvalidParameter
from recsql.progress import Step, no_step

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
    """Within the block, :func:`thread_count` is ``threads`` (None: unchanged), and the
    BLAS library (OpenBLAS, MKL) runs at most that many threads of its own."""
    token = _asked.set(check_threads(threads) if threads is not None else _asked.get())
    try:
        count = thread_count()
        with threadpool_limits(limits=count, user_api="blas"):
            yield count
    finally:
        _asked.reset(token)


def parallel_blocks(starts: Sequence[int], work: Callable[[int], None], step: Step = no_step) -> None:
    """Run ``work(start)`` for every block start on :func:`thread_count` threads.

    For blocks of array work (matrix products, partitions) that numpy and scipy run
    without the GIL; each ``work`` must write only its own block's rows.  BLAS runs one
    thread per block meanwhile (the blocks are the parallelism), ``step(1)`` is called
    in this thread as blocks finish, and the first error is raised once running blocks
    are done (the rest are cancelled).
    """
    threads = min(thread_count(), len(starts))
    if threads <= 1:
        for start in starts:
            work(start)
            step(1)
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, start) for start in starts]
        try:
            for done in as_completed(futures):
                done.result()
                step(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

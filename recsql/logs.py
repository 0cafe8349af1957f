"""recsql logs through the standard ``logging`` module, under the ``recsql`` logger.

The library only emits records (a retrain's start, phases, activation, failure, prune;
imports); an application's own logging configuration decides where they go.  The CLI
and the cron jobs call :func:`configure_logging`: records on stderr with a timestamp and
level, at WARNING by default (``-v``: INFO, ``-q``: ERROR).
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "recsql-cli"


def configure_logging(level: int) -> None:
    """Send the ``recsql`` logger's records to stderr at ``level`` (once per process:
    calling again only changes the level)."""
    logger = logging.getLogger("recsql")
    logger.setLevel(level)
    handler = next(
        (h for h in logger.handlers if h.get_name() == _HANDLER_NAME and isinstance(h, logging.StreamHandler)), None
    )
    if handler is None:
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    handler.setStream(sys.stderr)  # the current stderr (tests capture it per run)
    logger.propagate = False

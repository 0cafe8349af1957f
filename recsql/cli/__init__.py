"""The ``recsql`` command line: the root group in :mod:`~recsql.cli.app`, one module
per command group (each command one library call), printing through
:mod:`~recsql.cli.output` (tables, or JSON with ``--json``)."""

# Importing the group modules registers their commands on ``cli``.
from recsql.cli import admin, db, demo, events, imports, models, serve, training  # noqa: F401
from recsql.cli.app import cli, main

__all__ = ["cli", "main"]

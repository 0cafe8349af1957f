"""The ``recsql`` command line: :mod:`~recsql.cli.commands` (one library call per
command) printing through :mod:`~recsql.cli.output` (tables, or JSON with ``--json``)."""

from recsql.cli.commands import cli, main

__all__ = ["cli", "main"]

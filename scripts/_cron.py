"""Run one recsql CLI command the way cron wants it: exit 0 on success; on failure one
line on stderr and a non-zero exit (1: a problem to fix, such as an outdated schema or
an unreachable database; 2: an unexpected error, which is a bug in recsql)."""

from __future__ import annotations

import sys

import click

from recsql.cli import cli


def run(name: str, args: list[str]) -> int:
    try:
        cli.main(args=args, prog_name="recsql", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        print(f"{name} failed: {exc.format_message()}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - cron needs one line, not a traceback
        print(f"{name} failed: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0

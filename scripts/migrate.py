#!/usr/bin/env python3
"""Cron/deploy entry point: migrate recsql's schema to the newest revision.

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/migrate.py [--revision REV]

Exit 0 when the schema is current (prints the revision reached); otherwise one line on
stderr and exit 1 (or 2 for an unexpected error).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cron import run

import recsql


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: $RECSQL_DATABASE_URL")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    return run("migrate", lambda: print(recsql.upgrade(args.database_url, args.revision)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Cron/deploy entry point in a checkout: migrate recsql's schema to the newest revision;
the same as `python -m recsql.cron migrate` (see recsql/cron.py for exit codes).

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/migrate.py [--revision REV]
"""

import sys

from recsql.cron import main

if __name__ == "__main__":
    sys.exit(main(["migrate", *sys.argv[1:]]))

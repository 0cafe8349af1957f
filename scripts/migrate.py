#!/usr/bin/env python3
"""Cron/deploy entry point: migrate recsql's schema to the newest revision.

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/migrate.py

Exit 0 when the schema is current; otherwise one line on stderr and exit 1 (or 2 for
an unexpected error).  Extra arguments go to `recsql db upgrade` (e.g. --revision).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cron import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run("migrate", ["--quiet", "db", "upgrade", *sys.argv[1:]]))

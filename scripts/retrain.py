#!/usr/bin/env python3
"""Cron entry point in a checkout: retrain and activate; the same as
`python -m recsql.cron retrain` (see recsql/cron.py for output and exit codes).

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/retrain.py --test-fraction 0.1
"""

import sys

from recsql.cron import main

if __name__ == "__main__":
    sys.exit(main(["retrain", *sys.argv[1:]]))

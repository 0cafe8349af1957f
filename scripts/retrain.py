#!/usr/bin/env python3
"""Cron entry point: retrain from the stored ratings and activate the new model.

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/retrain.py --test-fraction 0.1

Arguments are those of `recsql train`.  Prints the new model's RMSE lines and exits 0;
on failure prints one line on stderr, exits 1 (or 2 for an unexpected error) and
leaves the previous model active.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cron import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run("retrain", ["--quiet", "train", *sys.argv[1:]]))

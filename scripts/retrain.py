#!/usr/bin/env python3
"""Cron entry point: retrain from the stored ratings and activate the new model.

    RECSQL_DATABASE_URL=postgresql://recsql@db/shop scripts/retrain.py --test-fraction 0.1

Arguments are those of `recsql train` (parsed by that command's own options, then passed
to ``recsql.train``).  On success prints one JSON line (model_id, counts, metrics, phase
seconds) and exits 0; on failure prints one line on stderr, exits 1 (or 2 for an
unexpected error) and leaves the previous model active.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cron import run

import recsql
from recsql.cli.commands import stop_on_signals
from recsql.cli.commands import train as train_command
from recsql.cli.output import to_json


def retrain(argv: list[str]) -> None:
    options = train_command.make_context("retrain.py", list(argv)).params
    engine = recsql.connect()
    try:
        result = recsql.train(engine, **options)
    finally:
        engine.dispose()
    print(to_json({
        "model_id": result.model_id, "algorithm": result.algorithm, "n_users": result.n_users,
        "n_movies": result.n_movies, "n_ratings": result.n_ratings,
        "metrics": result.metrics, "timings": result.timings,
    }, indent=None))


if __name__ == "__main__":
    stop_on_signals()
    sys.exit(run("retrain", lambda: retrain(sys.argv[1:])))

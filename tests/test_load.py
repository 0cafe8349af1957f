"""scripts/bench_load.py in a short configuration: readers never fail and never see half a
model while retrains run, on both databases, and its detector does catch a bad answer."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from sqlalchemy import update

from recsql import store
from recsql.db.tables import ACTIVE, RETIRED, Model
from tests.conftest import ROOT

# A small synthetic catalogue and cheap training: a few seconds per database.
SHORT = [
    "--synthetic",
    "--ratings",
    "20000",
    "--users",
    "300",
    "--movies",
    "200",
    "--samples",
    "5",
    "--features",
    "4",
    "--readers",
    "2",
    "--retrains",
    "2",
    "--min-queries",
    "1000",
    "--ids",
    "100",
]


@pytest.fixture(scope="module")
def bench_load() -> Iterator[ModuleType]:
    """The script as a module.  Its folder stays on sys.path while the tests run, because
    spawned reader processes import it by name from the path they inherit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))
        yield importlib.import_module("bench_load")


def _run(bench_load: ModuleType, url: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "load.json"
    status = bench_load.main(["--database-url", url, *SHORT, *extra, "--json", str(out)])
    return status, json.loads(out.read_text())


def test_readers_see_whole_models_while_retrains_run(bench_load, db_url, tmp_path):
    status, figures = _run(bench_load, db_url, tmp_path)
    assert figures["queries"] > 0 and figures["queries_while_retraining"] > 0
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["inconsistent"] == 0
    assert status == 0
    # The readers really were reading across a switch: answers came from two models or more.
    assert len(figures["answers_per_model"]) >= 2, figures["answers_per_model"]
    assert figures["mode"] == ("processes" if figures["database"] == "sqlite" else "threads")


def test_detector_flags_a_mixed_or_empty_answer(bench_load):
    old = [(1, 10, "Heat (1995)", 0.9), (2, 11, "Alien (1979)", 0.8), (3, 12, "Fargo (1996)", 0.7)]
    new = [(1, 12, "Fargo (1996)", 0.95), (2, 13, "Babe (1995)", 0.85), (3, 10, "Heat (1995)", 0.75)]
    fp = bench_load.fingerprint
    references = pd.DataFrame(
        {"kind": [0, 0], "key": [5, 5], "fingerprint": [fp(old), fp(new)], "model_id": [1, 2], "rows": [3, 3]}
    )
    answers = pd.DataFrame(
        {
            "kind": 0,
            "key": 5,
            "fingerprint": [
                fp(old),
                fp(new),
                fp(old[:2] + new[2:]),  # rows of two models in one answer
                fp(old + new),  # both models' rows, as if two were active
                fp(old[:2]),  # a partial list
                fp([]),  # empty, though both models have a list
            ],
        }
    )
    assert bench_load.judge(answers, references).tolist()[:2] == [1, 2]
    assert bench_load.judge(answers, references).isna().tolist() == [False, False, True, True, True, True]
    # The same list asked about another id, or of the other view, is not that id's answer.
    elsewhere = pd.DataFrame({"kind": [0, 1], "key": [6, 5], "fingerprint": [fp(old), fp(old)]})
    assert bench_load.judge(elsewhere, references).isna().all()


def test_a_switch_in_two_transactions_is_caught(bench_load, sqlite_url, tmp_path, monkeypatch):
    """End to end: a writer that retires the old model and activates the new one in two
    commits leaves the views empty in between, and the readers report it."""

    def two_commits(engine, model_id, _lock):
        with engine.begin() as conn:
            conn.execute(update(Model).where(Model.status == ACTIVE).values(status=RETIRED))
        time.sleep(0.05)
        with engine.begin() as conn:
            conn.execute(update(Model).where(Model.id == model_id).values(status=ACTIVE))

    monkeypatch.setattr(store, "switch_active", two_commits)
    status, figures = _run(bench_load, sqlite_url, tmp_path, "--mode", "threads")
    assert figures["inconsistent"] > 0 and figures["inconsistent_empty"] == figures["inconsistent"]
    assert status == 1

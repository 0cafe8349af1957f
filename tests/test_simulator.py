"""The split simulator, end to end on MovieLens 100K: the online metrics pick the model
whose stored lists score better offline, at p < 0.01, on both databases."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_simulated_split_picks_the_better_offline_model(ml100k, db_url):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "simulate_split.py"),
            "--data",
            str(ml100k / "u.data"),
            "--database-url",
            db_url,
            "--visits",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    recsql_ndcg, popular_ndcg = map(
        float, re.search(r"\(recsql, A\) ([0-9.]+), .*\(most popular, B\) ([0-9.]+)", done.stdout).groups()
    )
    assert recsql_ndcg > 0.35 and popular_ndcg < 0.25  # the gap the simulator is meant to tell apart
    a, b = re.findall(r"click-through ([0-9.]+)%", done.stdout)[:2]
    assert float(a) > float(b)
    verdict = re.search(r"verdict: model (\d+) \(A\) better: .* p = ([0-9.e+-]+)", done.stdout)
    assert verdict is not None and float(verdict.group(2)) < 0.01
    assert "agrees with the offline lists" in done.stdout

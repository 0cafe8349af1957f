"""docs/howto/experiments.md holds: its SQL runs as written on both databases during a
split, and its source file is the mapping it describes."""

from __future__ import annotations

import re

from sqlalchemy import text

import recsql
from tests.conftest import ROOT, SMALL_RATINGS

PAGE = (ROOT / "docs" / "howto" / "experiments.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)


def test_the_pages_sql_logs_a_split_that_the_online_metrics_count(engine, run, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(SMALL_RATINGS)
    run("import", "ratings", path)
    run("train", "--features", 2, "--samples", 0)
    run("train", "--features", 3, "--samples", 0, "--no-activate")
    run("models", "split", 1, 2, "--share", 0.5)
    read, shown, clicked = _blocks("sql")
    served, n_shown = set(), 0
    with engine.begin() as conn:
        for user in range(1, 13):
            for movie, _title, rank, model in conn.execute(text(read), {"user_id": user}).all():
                served.add(model)
                n_shown += 1
                conn.execute(text(shown), {"user_id": user, "movie_id": movie, "model_id": model, "rank": rank})
                if rank == 1 and model == 2:
                    conn.execute(text(clicked), {"user_id": user, "movie_id": movie})
    assert served == {1, 2}
    online = recsql.online_metrics(engine)
    assert online.b.click_through.successes == online.b.users > 0 and online.a.click_through.successes == 0
    assert online.a.impressions + online.b.impressions == n_shown


def test_the_pages_source_file_is_the_events_mapping(tmp_path):
    (toml,) = _blocks("toml")
    path = tmp_path / "events.toml"
    path.write_text(toml)
    expected = recsql.Source.from_events({"clicked": 3.5, "watched": 4, "bought": 5}, ratings=True)
    assert recsql.Source.from_toml(path) == expected

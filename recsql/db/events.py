"""The statements on ``events``: the online metrics' counts, and pruning by age.

The counts are one statement per comparison, whatever the number of events; the shown
events are read from a partial index of their own (model, time, user, movie).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select, text

from recsql.db.tables import UnixNow

# One statement per database, each the faster there on a million impressions
# (scripts/bench_online.py): PostgreSQL hashes the shown events against the (few)
# clicks and conversions; SQLite, which joins by nested loops only, probes the
# (user, movie, kind, time) index once per impression.  tests/test_online.py checks
# both against the definitions.
_SHOWN = """
WITH shown AS (
    SELECT model_id, user_id, movie_id, MIN(at) AS at
    FROM events
    WHERE kind = 'shown' AND model_id IN (:a, :b) AND at >= :since AND at < :until
    GROUP BY model_id, user_id, movie_id
)"""
_TOTALS = """
SELECT model_id,
       COUNT(*) AS impressions,
       COUNT(DISTINCT user_id) AS users,
       SUM(clicked) AS clicks,
       SUM(converted) AS conversions,
       COUNT(DISTINCT CASE WHEN clicked = 1 THEN movie_id END) AS clicked_movies
FROM marked
GROUP BY model_id
"""
COUNTS_SQL = {
    "postgresql": text(
        _SHOWN
        + """, acts AS (
    SELECT user_id, movie_id, at, kind FROM events
    WHERE kind IN ('clicked', 'rated', 'bought') AND at >= :since AND at < :until
), marked AS (
    SELECT s.model_id, s.user_id, s.movie_id,
           MAX(CASE WHEN c.kind = 'clicked' THEN 1 ELSE 0 END) AS clicked,
           MAX(CASE WHEN c.kind IN ('rated', 'bought') THEN 1 ELSE 0 END) AS converted
    FROM shown s
    LEFT JOIN acts c ON c.user_id = s.user_id AND c.movie_id = s.movie_id AND c.at >= s.at AND c.at <= s.at + :window
    GROUP BY s.model_id, s.user_id, s.movie_id
)"""
        + _TOTALS
    ),
    "sqlite": text(
        _SHOWN
        + """, marked AS (
    SELECT s.model_id, s.user_id, s.movie_id,
           CASE WHEN EXISTS (SELECT 1 FROM events c
                             WHERE c.user_id = s.user_id AND c.movie_id = s.movie_id AND c.kind = 'clicked'
                               AND c.at >= s.at AND c.at <= s.at + :window AND c.at < :until)
                THEN 1 ELSE 0 END AS clicked,
           CASE WHEN EXISTS (SELECT 1 FROM events c
                             WHERE c.user_id = s.user_id AND c.movie_id = s.movie_id AND c.kind IN ('rated', 'bought')
                               AND c.at >= s.at AND c.at <= s.at + :window AND c.at < :until)
                THEN 1 ELSE 0 END AS converted
    FROM shown s
)"""
        + _TOTALS
    ),
}

PRUNE_SQL = text("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < :cutoff ORDER BY id LIMIT :batch)")


def impression_counts(conn: Connection, a: int, b: int, *, since: int, until: int, window: int) -> list[Any]:
    """Per model (``a`` or ``b``) shown in ``since`` <= at < ``until``: its impressions
    (first showings of a (user, movie)), users, clicks and conversions within ``window``
    seconds of them (and before ``until``: the figures as they stood then), and distinct
    clicked movies; rows with attributes of those names."""
    params = {"a": a, "b": b, "since": since, "until": until, "window": window}
    return list(conn.execute(COUNTS_SQL[conn.dialect.name], params))


def database_clock(conn: Connection) -> int:
    """The database's time in Unix seconds: what ``events.at`` defaults to."""
    return int(conn.execute(select(UnixNow())).scalar_one())


def delete_older_than(engine: Engine, seconds: int, batch: int) -> int:
    """Delete the events more than ``seconds`` older than the database's clock, ``batch``
    per transaction, so the applications' inserts never wait long; returns how many."""
    with engine.connect() as conn:
        cutoff = database_clock(conn) - seconds
    deleted = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(PRUNE_SQL, {"cutoff": cutoff, "batch": batch}).rowcount
        deleted += count
        if count < batch:
            return deleted

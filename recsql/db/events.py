"""The statements on ``events``: the online metrics' counts, and pruning by age.

The counts are one statement per comparison, whatever the number of events: the
``events`` indexes on (user, movie, time) and (model, time) serve its join and filter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text

COUNTS_SQL = text(
    """
WITH shown AS (
    SELECT model_id, user_id, movie_id, MIN(at) AS at
    FROM events
    WHERE kind = 'shown' AND model_id IN (:a, :b) AND at >= :since AND at < :until
    GROUP BY model_id, user_id, movie_id
), marked AS (
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
)
SELECT model_id,
       COUNT(*) AS impressions,
       COUNT(DISTINCT user_id) AS users,
       SUM(clicked) AS clicks,
       SUM(converted) AS conversions,
       COUNT(DISTINCT CASE WHEN clicked = 1 THEN movie_id END) AS clicked_movies
FROM marked
GROUP BY model_id
"""
)

PRUNE_SQL = text("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < :cutoff ORDER BY id LIMIT :batch)")


def impression_counts(conn: Connection, a: int, b: int, *, since: int, until: int, window: int) -> list[Any]:
    """Per model (``a`` or ``b``) shown in ``since`` <= at < ``until``: its impressions
    (first showings of a (user, movie)), users, clicks and conversions within ``window``
    seconds of them (and before ``until``: the figures as they stood then), and distinct
    clicked movies; rows with attributes of those names."""
    params = {"a": a, "b": b, "since": since, "until": until, "window": window}
    return list(conn.execute(COUNTS_SQL, params))


def delete_before(engine: Engine, cutoff: int, batch: int) -> int:
    """Delete the events before ``cutoff`` (Unix seconds), ``batch`` per transaction, so
    the applications' inserts never wait long; returns how many."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(PRUNE_SQL, {"cutoff": cutoff, "batch": batch}).rowcount
        deleted += count
        if count < batch:
            return deleted

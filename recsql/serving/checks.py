"""Every argument of a serving call checked before any query runs.

A web request can send anything: ids that are strings, floats or booleans, a ``limit``
of a million, ratings that are NaN or off the scale.  Each is refused here with
:class:`~recsql.errors.InvalidParameter` (HTTP 400), so a bad request never costs a
query and never reaches the database as a driver error.  Application keys (text ids)
are resolved by the Recommender before the ids they map to are checked here.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from recsql.errors import InvalidParameter
from recsql.store import ModelInfo

MAX_LIMIT = 1000
"""The longest list (``limit``) and the biggest batch (ids of ``similar_many`` and
``recommend_many``) one call answers: a web request can ask for anything, and a page of
recommendations is far shorter; a bound keeps one request from costing a table scan."""

INT64 = (-(2**63), 2**63 - 1)  # ids are BIGINT in the database: a bigger one is a driver error

DIGITS = re.compile(r"-?[0-9]+")
"""An integer id typed as text (a URL, the command line), in a catalogue of integer ids."""


def is_int(value: object) -> TypeGuard[int]:
    """An int, or a numpy integer; never a bool (True is not movie 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_id(value: object, what: str) -> int:
    """A movie or user id as an int: no string (the web layer converts), no float, no bool."""
    if not is_int(value) or not INT64[0] <= int(value) <= INT64[1]:
        raise InvalidParameter(f"a {what} id must be a whole number (64-bit), not {value!r}")
    return int(value)


def check_ids(values: Iterable[object], what: str, most: int | None = MAX_LIMIT) -> list[int]:
    """Ids in the order given, each once; at most ``most`` of them (None: any number)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidParameter(f"{what} ids must be a list of whole numbers, not {values!r}")
    ids = list(dict.fromkeys(check_id(v, what) for v in values))
    if most is not None and len(ids) > most:
        raise InvalidParameter(f"at most {most} {what} ids at a time, not {len(ids)}")
    return ids


def check_batch(values: object, what: str, most: int | None = MAX_LIMIT) -> list[Any]:
    """A batch of ids or application keys, each once, in the order given."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidParameter(f"{what} ids must be a list, not {values!r}")
    given = list(dict.fromkeys(values))
    if most is not None and len(given) > most:
        raise InvalidParameter(f"at most {most} {what} ids at a time, not {len(given)}")
    return given


def check_limit(limit: object) -> int:
    """A list's length: a whole number from 1 to :data:`MAX_LIMIT`."""
    if not is_int(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return int(limit)


def check_ratings(ratings: Mapping[int, float]) -> dict[int, float]:
    """{movie id: rating} with int ids and finite ratings (the scale is checked once the
    active model is known: :func:`check_scale`)."""
    if not isinstance(ratings, Mapping):
        raise InvalidParameter(f"ratings must map movie ids to ratings, not {type(ratings).__name__}")
    if not ratings:
        raise InvalidParameter("give at least one (movie, rating) pair")
    checked: dict[int, float] = {}
    for movie, value in ratings.items():
        movie_id = check_id(movie, "movie")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise InvalidParameter(f"the rating of movie {movie_id} must be a finite number, not {value!r}")
        checked[movie_id] = float(value)
    return checked


def check_scale(ratings: dict[int, float], info: ModelInfo) -> None:
    """Ratings off the model's scale (a 50 on a 1-5 scale) would fold in a user unlike any
    it was trained on; a model trained without a scale takes any finite rating."""
    if info.clip is None:
        return
    low, high = info.clip
    off = [f"{movie}: {value:g}" for movie, value in ratings.items() if not low <= value <= high]
    if off:
        raise InvalidParameter(
            f"ratings must be from {low:g} to {high:g}, the active model's scale ({info.model_id}); "
            f"off it: {', '.join(off)}"
        )

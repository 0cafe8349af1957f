"""Model versions in the database: the one place that reads and writes recsql's
``models`` row and output tables.

Every other module asks the store and writes no SQL of its own on these tables:

- :mod:`.models`: :class:`ModelInfo` (a version's record, typed) and the readers of
  ``models`` (:func:`list_models`, :func:`get_model`, :func:`active_info`, ...);
- :mod:`.runs`: a version's life (:func:`start`, :func:`fail`, :func:`reclaim_dead`,
  :func:`switch_active` / :func:`activate_model`, :func:`prune`, :func:`record_timings`);
- :mod:`.write`: the output tables' layout encoded (:func:`save_outputs`,
  :func:`save_user`, :func:`discard_outputs`);
- :mod:`.read`: the same layout decoded (:func:`load_movie_factors`, :func:`load_similar`,
  :func:`load_user`) and what the admin's views read of any version;
- :mod:`.views`: serving's precomputed answers, one indexed query on a view each;
- :mod:`.catalogue`: titles, and the ratings a model learnt from;
- :mod:`.split`: traffic splits between two versions, and which users each serves.

The names below are the store's interface (``from recsql import store; store.start(...)``).
"""

from recsql.store.models import (
    ACTIVE_MODEL_VIEW,
    COMPLETE,
    DEAD,
    DEFAULT_RECOMMEND_N,
    OUTPUT_TABLES,
    ModelInfo,
    active_info,
    active_model_id,
    complete_model,
    get_model,
    list_models,
    running_description,
    show_model,
)
from recsql.store.read import (
    count_rows,
    load_factors,
    load_lists,
    load_movie_factors,
    load_similar,
    load_user,
    output_counts,
)
from recsql.store.runs import (
    DEFAULT_KEEP,
    activate_model,
    fail,
    prune,
    prune_models,
    reclaim_dead,
    reclaim_space,
    record_timings,
    shelve,
    start,
    switch_active,
)
from recsql.store.split import BUCKETS, Split, buckets, end_split, list_splits, running_split, split_traffic
from recsql.store.write import PRUNE_BATCH, discard_outputs, json_safe, list_rows, save_outputs, save_user

__all__ = [
    "BUCKETS",
    "Split",
    "buckets",
    "list_splits",
    "running_split",
    "split_traffic",
    "end_split",
    "ACTIVE_MODEL_VIEW",
    "COMPLETE",
    "DEAD",
    "DEFAULT_KEEP",
    "DEFAULT_RECOMMEND_N",
    "OUTPUT_TABLES",
    "PRUNE_BATCH",
    "ModelInfo",
    "activate_model",
    "active_info",
    "active_model_id",
    "complete_model",
    "count_rows",
    "discard_outputs",
    "fail",
    "get_model",
    "json_safe",
    "list_rows",
    "load_factors",
    "load_lists",
    "list_models",
    "load_movie_factors",
    "load_similar",
    "load_user",
    "output_counts",
    "prune",
    "prune_models",
    "reclaim_dead",
    "reclaim_space",
    "record_timings",
    "shelve",
    "running_description",
    "save_outputs",
    "save_user",
    "show_model",
    "start",
    "switch_active",
]

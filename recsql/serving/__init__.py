"""The serving API applications import: recommendations, similar movies, predictions,
explanations and answers for brand-new users, all from the active model.

    from recsql import Recommender
    rec = Recommender("postgresql://app@db/shop")   # or an Engine, a Connection, an ORM Session
    rec.similar(3, limit=5)
    rec.similar_many([3, 9], limit=5)                            # one query for a page of movies
    rec.recommend(42, limit=10, exclude=[7])
    rec.recommend_many([42, 43])
    rec.recommend_for_ratings({3: 5, 9: 4})                      # a user the model never saw
    rec.explain(42, 7)
    rec.popular(10)

Lookups of precomputed answers are one indexed query on the views.  Answers computed on
the spot (fold-in of new users, predictions, explanations) use the active model's movie
factors (:func:`recsql.store.load_movie_factors`), loaded once and reloaded when another
model becomes active, and score through :class:`~recsql.algorithms.factors.Factors` like
training does.  A Recommender built on a Connection runs every query on it, inside the
host application's transaction; one built on an ORM Session, in the session's.

Made for web applications: every argument is checked before any query runs (ids are
ints, a ``limit`` is 1 to :data:`MAX_LIMIT`, ratings are finite and on the active model's
scale) and refused with :class:`~recsql.errors.InvalidParameter`; the database's own
failures become :class:`~recsql.errors.DatabaseUnavailable` (or ``SchemaError``), so every
error is a RecsqlError with an ``http_status``.  One Recommender on an Engine or URL can
serve all of an application's threads: each call borrows a pooled connection, and the
cached model is swapped whole under a lock.  A Recommender on a Connection or Session is
as single-threaded as what it was given.

Where things are: :mod:`.recommender` (the application's :class:`Recommender`),
:mod:`.admin` (:class:`AdminReader`, the admin's reads of any version), :mod:`.reader`
(connections, namespaces and application keys, which both share), :mod:`.answers` (what
calls return), :mod:`.checks` (argument checks), :mod:`.translate` (database errors).
Every query is the store's (:mod:`recsql.store`).
"""

from recsql.serving.admin import AdminReader
from recsql.serving.answers import Contribution, MovieInfo, PopularMovie, Recommendation, SimilarMovie
from recsql.serving.checks import MAX_LIMIT
from recsql.serving.reader import DEFAULT_TIMEOUT
from recsql.serving.recommender import Recommender

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_LIMIT",
    "AdminReader",
    "Contribution",
    "MovieInfo",
    "PopularMovie",
    "Recommendation",
    "Recommender",
    "SimilarMovie",
]

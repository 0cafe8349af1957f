"""recsql: recommendations from the ratings in your SQL database, read back with SQL.

The public API is in :mod:`recsql.api` and re-exported here.
"""

from recsql.api import (
    Evaluation,
    GenerateResult,
    generate,
    TuneRow,
    evaluate,
    plot_tuning,
    tune,
    ImportResult,
    ModelInfo,
    MovieInfo,
    SimilarMovie,
    TrainResult,
    connect,
    downgrade,
    import_movies,
    import_ratings,
    list_models,
    movie,
    schema_status,
    similar,
    train,
    upgrade,
)
from recsql.errors import RecsqlError
from recsql.source import Source
from recsql.recommender import Contribution, PopularMovie, Recommendation, Recommender

__version__ = "0.1.0"

__all__ = [
    # setting up and loading
    "connect", "upgrade", "downgrade", "schema_status", "import_ratings", "import_movies",
    "ImportResult", "generate", "GenerateResult", "Source",
    # training and evaluating
    "train", "TrainResult", "evaluate", "Evaluation", "tune", "TuneRow", "plot_tuning",
    "list_models", "ModelInfo",
    # serving
    "Recommender", "Recommendation", "PopularMovie", "Contribution", "similar", "SimilarMovie",
    "movie", "MovieInfo",
    "RecsqlError",
]

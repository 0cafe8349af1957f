"""recsql: recommendations from the ratings in your SQL database, read back with SQL.

The public API, in one place (the CLI calls exactly these)::

    import recsql
    engine = recsql.connect("postgresql://app@db/shop")
    recsql.import_ratings(engine, "ratings.csv")
    result = recsql.train(engine, features=15, regularization=0.1)
    recsql.Recommender(engine).similar(3, limit=5)

Where things are (docs/reference/README.md has the full map): ``db/`` (engines,
tables, migrations, bulk I/O, the statements imports run) and ``data/`` (files,
application tables, the rating matrix) at the edges; ``algorithms/`` (Factors, solvers,
item models, lists) and ``evaluation/`` in the pure middle; ``backends/`` (local or
Spark) run the fits; ``train.py`` strings a retrain together, ``store/`` owns the
tables of model versions, ``serving/`` answers applications (``Recommender``) and
admins (``AdminReader``); ``inspection.py``, ``compare.py``, ``online.py`` and
``report.py`` show models to admins; ``cli/`` prints.
"""

from recsql.compare import ModelDiff, diff_models
from recsql.data.events import import_events, log_events, prune_events
from recsql.data.imports import GenerateResult, ImportResult, generate, import_movies, import_ratings
from recsql.data.source import Source
from recsql.db.health import Health, health
from recsql.db.migrate import connect, downgrade, schema_status, upgrade
from recsql.db.roles import grant_reader, grant_source
from recsql.errors import NotFound, RecsqlError
from recsql.evaluation.evaluate import Evaluation, evaluate
from recsql.evaluation.tuning import TuneRow, plot_tuning, tune
from recsql.inspection import (
    ModelInspection,
    MovieInspection,
    UserInspection,
    inspect_model,
    inspect_movie,
    inspect_user,
)
from recsql.memory import Model, fit, load_model
from recsql.online import OnlineMetrics, online_metrics
from recsql.options import FitOptions
from recsql.report import write_report
from recsql.serving import Contribution, MovieInfo, PopularMovie, Recommendation, Recommender, SimilarMovie
from recsql.store import (
    ModelInfo,
    Split,
    activate_model,
    end_split,
    list_models,
    list_splits,
    output_counts,
    prune_models,
    show_model,
    split_traffic,
)
from recsql.train import TrainOptions, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    # setting up and loading
    "connect",
    "upgrade",
    "downgrade",
    "schema_status",
    "health",
    "Health",
    "grant_reader",
    "grant_source",
    "import_ratings",
    "import_movies",
    "ImportResult",
    "generate",
    "GenerateResult",
    "Source",
    # training and evaluating
    "train",
    "TrainOptions",
    "FitOptions",
    "TrainResult",
    "evaluate",
    "Evaluation",
    "fit",
    "Model",
    "load_model",
    "tune",
    "TuneRow",
    "plot_tuning",
    "list_models",
    "show_model",
    "output_counts",
    "activate_model",
    "prune_models",
    "ModelInfo",
    # inspecting (the admin's view)
    "inspect_movie",
    "inspect_user",
    "inspect_model",
    "MovieInspection",
    "UserInspection",
    "ModelInspection",
    "diff_models",
    "ModelDiff",
    "write_report",
    # experiments: what users did, traffic splits, online metrics
    "log_events",
    "import_events",
    "prune_events",
    "split_traffic",
    "end_split",
    "list_splits",
    "Split",
    "online_metrics",
    "OnlineMetrics",
    # serving
    "Recommender",
    "Recommendation",
    "PopularMovie",
    "Contribution",
    "SimilarMovie",
    "MovieInfo",
    "RecsqlError",
    "NotFound",
]

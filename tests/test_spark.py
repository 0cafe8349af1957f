"""The Spark backend (`recsql train --backend spark`): real `recsql` processes on
Spark's local[2] master, from PostgreSQL (read over JDBC) and SQLite (handed over as
recsql's reader), trained on MovieLens 100K u1.base and scored on u1.test.

Spark needs pyspark (the ``spark`` extra), a Java runtime and, for PostgreSQL, the JDBC
driver (Debian's libpostgresql-jdbc-java); without them these tests skip, except under
CI, where they fail.  The checks that need no Spark (settings, refusals) always run.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sqlalchemy import text

import recsql
from recsql import store
from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import recommendation_lists, similar_lists
from recsql.algorithms.ranking import FactorChoice
from recsql.data.matrix import RatingMatrix
from recsql.errors import EngineUnavailable, InvalidParameter
from recsql.spark import session as spark_session_module
from recsql.spark.als import SparkALS
from recsql.spark.lists import MOVIES_PER_TASK, SPARK_LIST_CELLS, lists_in_spark, spark_recommended, spark_similar
from recsql.spark.read import _jdbc_frame, frame_of_matrix, reads_over_jdbc
from recsql.spark.session import SparkSettings, jdbc_jar, spark_session
from tests.spark_support import MASTER, SPARK_TRAIN
from tests.spark_support import recsql_cli as _recsql
from tests.spark_support import require_spark as _require_spark


@pytest.fixture(scope="module")
def local_plain(ml100k) -> dict[str, float]:
    """The local backend's plain ALS at the Spark backend's defaults (10 features, 0.1,
    10 sweeps), on the same split."""
    result = recsql.evaluate(
        train_file=ml100k / "u1.base",
        test_file=ml100k / "u1.test",
        samples=0,
        features=10,
        regularization=0.1,
        max_iterations=10,
    )
    return result.mean


@pytest.fixture(scope="module")
def trained(module_db_url, ml100k):
    """u1.base in the database; a local default model, then a Spark one (PostgreSQL's
    lists by --metric cosine, computed in Spark, so they can be checked against the
    stored factors)."""
    dialect = module_db_url.split(":")[0].split("+")[0]
    _require_spark(jdbc=dialect == "postgresql")
    engine = recsql.connect(module_db_url)
    recsql.import_ratings(engine, ml100k / "u1.base")
    local = recsql.train(engine, test_file=ml100k / "u1.test")
    # PostgreSQL's model lists in Spark's tasks (recsql.lists=spark), SQLite's on the driver.
    metric = ["--metric", "cosine", "--spark-conf", "recsql.lists=spark"] if dialect == "postgresql" else []
    done = _recsql(module_db_url, *SPARK_TRAIN, "--test-file", str(ml100k / "u1.test"), *metric)
    assert done.returncode == 0, done.stderr
    # Spark's start-up lines are silenced (recsql/spark/log4j2.properties); the JDK's own
    # notice of the incubator module Spark's launcher always adds is all that is left.
    assert [line for line in done.stderr.splitlines() if "jdk.incubator.vector" not in line] == [], done.stderr
    yield {
        "engine": engine,
        "url": module_db_url,
        "dialect": dialect,
        "local": local,
        "output": done.stdout,
        "metric": "cosine" if metric else "items",
    }
    engine.dispose()


def test_the_spark_model_is_active_and_says_how_it_was_made(trained):
    models = recsql.list_models(trained["engine"])
    spark, local = models[0], models[1]
    assert spark.status == "active" and local.status == "retired"
    assert spark.algorithm == "spark-als" and spark.params["backend"] == "spark"
    assert spark.params["spark_master"] == MASTER and spark.params["warmup_sweeps"] == 5
    how = "over JDBC" if trained["dialect"] == "postgresql" else "handed to Spark"
    assert how in spark.params["plan"], spark.params["plan"]
    assert set(spark.timings) >= {"read", "fit", "similarities", "recommendations", "write"}
    assert f"model {spark.model_id} (spark-als) is active" in trained["output"]


def test_spark_rmse_is_near_the_local_plain_als(trained, local_plain):
    """MLlib fits the factors with the biases held fixed (it has no bias terms); the
    biases re-estimated after a warm-up fit bring it within 0.01 of the local ALS that
    fits both jointly (recsql/spark/als.py)."""
    spark = recsql.list_models(trained["engine"])[0].metrics
    assert spark["test_rmse"] < local_plain["test_rmse"] + 0.01, (spark["test_rmse"], local_plain["test_rmse"])
    assert spark["test_rmse"] < 0.96  # and far better than the mean rating (1.15 on u1)


def test_spark_lists_rank_like_the_local_defaults(trained):
    if trained["metric"] != "items":
        pytest.skip("this database's Spark model lists by cosine (see the fixture)")
    spark = recsql.list_models(trained["engine"])[0].metrics
    local = trained["local"].metrics
    assert spark["ndcg_at_10"] >= 0.9 * local["ndcg_at_10"], (spark["ndcg_at_10"], local["ndcg_at_10"])
    assert spark["similar_ndcg_at_10"] >= 0.9 * local["similar_ndcg_at_10"]


def test_the_views_serve_the_spark_model_as_its_factors_say(trained):
    """The lists a Spark model stores are recsql's own, computed from its factors (here
    in Spark's tasks): the `similar_movies` view agrees with the cosine neighbours of the
    stored features."""
    if trained["metric"] != "cosine":
        pytest.skip("this database's Spark model lists by the item model (see the fixture)")
    engine = trained["engine"]
    with engine.connect() as conn:
        model = store.get_model(conn, store.active_model_id(conn))
        factors = store.load_movie_factors(conn, model)
        served = conn.execute(
            text(
                "SELECT movie_id, similar_movie_id FROM similar_movies WHERE movie_id IN (1, 50, 100, 181) "
                "ORDER BY movie_id, rank"
            )
        ).all()
    assert served
    neighbours = factors.similar_movies(k=20, metric="cosine")
    for movie in (1, 50, 100, 181):
        row = int(np.searchsorted(factors.movie_ids, movie))
        expected = factors.movie_ids[neighbours.indices[row]][:10]
        stored = [similar for m, similar in served if m == movie][:10]
        assert len(set(stored) & set(expected.tolist())) >= 9, (movie, stored, expected)
    with recsql.Recommender(engine) as recommender:
        assert [m.movie_id for m in recommender.similar(50, limit=3)] == [s for m, s in served if m == 50][:3]


def test_postgresql_is_read_over_jdbc_in_the_partitions_asked_for(trained):
    """In-process: Spark's JDBC read of recsql's ratings, its partitions by user id, and
    the other cases recsql reads itself."""
    engine = trained["engine"]
    if trained["dialect"] != "postgresql":
        assert not reads_over_jdbc(engine, "max", None)
        return
    assert reads_over_jdbc(engine, "max", None) and reads_over_jdbc(engine, "mean", None)
    assert not reads_over_jdbc(engine, "last", None)  # needs the rows in time order
    settings = SparkSettings.of(MASTER, ["recsql.jdbc.partitions=3"])
    with spark_session(settings, jdbc=True) as spark:
        frame = _jdbc_frame(spark, engine, settings, None)
        assert frame.rdd.getNumPartitions() == 3
        assert frame.count() == 80_000 and frame.columns == ["user", "movie", "value"]
        default = _jdbc_frame(spark, engine, SparkSettings.of(MASTER, None), None)
        assert default.rdd.getNumPartitions() == 2 * spark.sparkContext.defaultParallelism == 4
        assert spark.conf.get("spark.ui.showConsoleProgress") == "false"  # recsql's bars, not Spark's


def test_evaluate_on_spark_scores_as_train_does(trained, ml100k):
    if trained["dialect"] != "sqlite":
        pytest.skip("one evaluation is enough: it reads files, not the database")
    done = _recsql(
        trained["url"],
        "evaluate",
        "--backend",
        "spark",
        "--spark-master",
        MASTER,
        "--json",
        "--train",
        str(ml100k / "u1.base"),
        "--test",
        str(ml100k / "u1.test"),
    )
    assert done.returncode == 0, done.stderr
    mean = json.loads(done.stdout)["mean"]
    stored = recsql.list_models(trained["engine"])[0].metrics
    assert mean["test_rmse"] == pytest.approx(stored["test_rmse"], abs=1e-6)
    assert mean["ndcg_at_10"] == pytest.approx(stored["ndcg_at_10"], abs=1e-6)


@pytest.mark.parametrize("metric", ["items", "cosine", "l1"])
def test_lists_computed_in_spark_are_the_drivers(spark, metric):
    """Spark's tasks run the driver's list code on their blocks: the same lists, for a
    model with more movies than one task lists and users in several batches."""
    rng = np.random.default_rng(3)
    n_users, n_movies = 300, 2 * MOVIES_PER_TASK + 70
    factors = Factors(
        user_ids=np.arange(1, n_users + 1) * 3,
        movie_ids=np.arange(1, n_movies + 1) * 7,
        user_factors=rng.normal(size=(n_users, 4)),
        movie_factors=rng.normal(size=(n_movies, 4)),
        global_mean=3.5,
        user_bias=rng.normal(0, 0.3, n_users),
        movie_bias=rng.normal(0, 0.3, n_movies),
        clip=(1, 5),
    )
    items = (
        FactorChoice(
            rng.normal(size=(n_users, 6)).astype(np.float32), rng.normal(size=(n_movies, 6)).astype(np.float32)
        )
        if metric == "items"
        else None
    )
    rated = sp.random(n_users, n_movies, density=0.01, format="csr", random_state=3)
    rated.data[:] = 1.0
    rated[np.arange(n_users), rng.integers(0, n_movies, n_users)] = 1.0  # every user rated something
    rows, cols = rated.nonzero()
    frame = spark.createDataFrame(
        pd.DataFrame(
            {"user": factors.user_ids[rows].astype(np.int32), "movie": factors.movie_ids[cols].astype(np.int32)}
        )
    )
    similar = spark_similar(spark, factors, items, 15, metric)
    expected = similar_lists(factors, items, 15, metric)
    np.testing.assert_array_equal(similar.indices, expected.indices)
    np.testing.assert_allclose(similar.scores, expected.scores, rtol=1e-6)
    recommended = spark_recommended(spark, frame, factors, items, 10)
    local = recommendation_lists(factors, items, rated.tocsr(), 10)
    np.testing.assert_array_equal(recommended.indices, local.indices)
    np.testing.assert_allclose(recommended.scores, local.scores, rtol=1e-6)
    np.testing.assert_allclose(recommended.predicted, local.predicted, rtol=1e-6)


@pytest.mark.parametrize("local_file", [True, False])
def test_a_matrix_reaches_spark_whole_and_without_its_rows_in_the_plan(spark, local_file):
    """Both hand-overs (a Parquet file for local masters, a checkpoint for clusters)
    give Spark every cell, and a plan that reads a file, not rows held in the plan."""
    matrix = RatingMatrix.from_triples(np.array([3, 3, 9, 12]), np.array([7, 8, 7, 1]), np.array([4.0, 2.5, 5.0, 1.0]))
    frame = frame_of_matrix(spark, matrix, local_file=local_file)
    rows = sorted(tuple(r) for r in frame.collect())
    assert rows == [(3, 7, 4.0), (3, 8, 2.5), (9, 7, 5.0), (12, 1, 1.0)]
    plan = frame._jdf.queryExecution().analyzed().toString()
    assert "LocalRelation" not in plan, plan


@pytest.fixture(scope="module")
def spark():
    _require_spark(jdbc=False)
    with spark_session(SparkSettings.of(MASTER, None)) as session:
        yield session


# ----------------------------------------------------------------- no Spark needed


def test_lists_move_to_spark_on_a_cluster_past_the_cell_count():
    many = int(SPARK_LIST_CELLS**0.5) + 1
    assert not lists_in_spark("auto", local_master=True, n_users=many, n_movies=many)  # shares the driver's cores
    assert lists_in_spark("auto", local_master=False, n_users=many, n_movies=many)
    assert not lists_in_spark("auto", local_master=False, n_users=1000, n_movies=1000)
    assert lists_in_spark("spark", local_master=True, n_users=10, n_movies=10)
    assert not lists_in_spark("driver", local_master=False, n_users=many, n_movies=many)


@pytest.mark.parametrize("master", ["nosuch://x", "local[x]", "spark:/host"])
def test_a_master_url_spark_cannot_take_is_refused_before_the_run(master):
    with pytest.raises(InvalidParameter, match="is not a Spark master URL"):
        SparkSettings.of(master, None)


def test_spark_settings_are_key_value_pairs_and_recsql_keys_are_known():
    settings = SparkSettings.of(None, ["spark.executor.memory=8g", "recsql.jdbc.partitions=64"])
    assert settings.master == "local[*]"
    assert settings.spark_conf() == {"spark.executor.memory": "8g"}
    assert settings.recsql_int("recsql.jdbc.partitions", 4) == 64
    assert settings.recsql_int("recsql.jdbc.fetchsize", 123) == 123
    with pytest.raises(InvalidParameter, match="key=value"):
        SparkSettings.of(None, ["spark.executor.memory"])
    with pytest.raises(InvalidParameter, match="unknown recsql setting 'recsql.jdbc.partition'"):
        SparkSettings.of(None, ["recsql.jdbc.partition=3"])
    with pytest.raises(InvalidParameter, match="at least 1"):
        SparkSettings.of(None, ["recsql.jdbc.fetchsize=0"]).recsql_int("recsql.jdbc.fetchsize", 1)
    assert SparkALS(settings=SparkSettings.of(None, ["recsql.warmup.sweeps=0"])).warmup_sweeps == 0
    assert SparkALS(max_iterations=7).warmup_sweeps == 3 and SparkALS().lists == "auto"


def test_without_pyspark_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    with pytest.raises(EngineUnavailable, match=r"pip install 'recsql\[spark\]'"):
        spark_session_module.require_pyspark()


def test_without_the_jdbc_driver_the_message_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv(spark_session_module.JDBC_JAR_ENV, str(tmp_path / "missing.jar"))
    assert jdbc_jar() is None
    with pytest.raises(EngineUnavailable, match="spark.jars.packages=org.postgresql:postgresql"):
        spark_session_module._conf_with_defaults(SparkSettings.of(MASTER, None), tmp_path, jdbc=True)
    given = SparkSettings.of(MASTER, ["spark.jars.packages=org.postgresql:postgresql:42.7.4"])
    conf = spark_session_module._conf_with_defaults(given, tmp_path, jdbc=True)
    assert "spark.jars" not in conf  # the user's way to the driver is left alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "spark", "--samples", "5"], "fits plain ALS"),
        (["--backend", "spark", "--solver", "cg"], "runs on the local backend only"),
        (["--backend", "spark", "--implicit"], "no implicit-feedback priors"),
        (["--backend", "spark", "--time-budget", "10"], "does not take it"),
        (["--spark-master", MASTER], "go with --backend spark"),
        (["--backend", "spark", "--spark-conf", "oops"], "key=value"),
        (
            ["--backend", "spark", "--spark-conf", "recsql.lists=cloud"],
            "recsql.lists must be one of auto, driver, spark",
        ),
        (["--backend", "spark", "--spark-conf", "recsql.warmup.sweeps=-1"], "at least 0"),
    ],
)
def test_options_the_engine_cannot_honour_are_refused_before_the_run(sqlite_url, ml100k, args, message):
    engine = recsql.connect(sqlite_url)
    recsql.import_ratings(engine, ml100k / "u1.test")
    done = _recsql(sqlite_url, "train", *args)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert recsql.list_models(engine) == []  # refused before any run was recorded


def test_spark_reads_over_jdbc_in_recsql_namespace_and_the_applications(postgresql_url):
    """Spark's JDBC connections have the role's own search_path: under --schema recsql's
    ratings are named in recsql's schema, and a source's query (the application's names)
    runs in sessions that are read-only, time-bounded and in the source's role.  (What
    Spark is handed, checked without starting it: a real run of both reads is in
    docs/decisions.md.)"""
    from recsql.data.source import Source

    handed: list[tuple] = []

    class Reader:
        def jdbc(self, url, table, **options):
            handed.append((table, options["properties"]))
            return types.SimpleNamespace(selectExpr=lambda *_columns: None)

    spark = types.SimpleNamespace(read=Reader(), sparkContext=types.SimpleNamespace(defaultParallelism=2))
    engine = recsql.connect(postgresql_url, schema="rs")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO rs.ratings (user_id, movie_id, value) VALUES (1, 1, 5), (2, 1, 4)"))
        conn.execute(text("CREATE TABLE public.reviews (customer INTEGER, item INTEGER, stars INTEGER)"))
        conn.execute(text("INSERT INTO public.reviews VALUES (1, 2, 3)"))
    settings = SparkSettings.of(None, None)
    _jdbc_frame(spark, engine, settings, None)
    source = Source(table="reviews", user="customer", movie="item", rating="stars", timeout=60)
    _jdbc_frame(spark, engine, settings, source)
    (own, own_properties), (app, app_properties) = handed
    assert 'FROM "rs".ratings' in own and "sessionInitStatement" not in own_properties
    assert "FROM reviews" in app and app_properties["sessionInitStatement"] == (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; SET statement_timeout = '60000ms'"
    )
    engine.dispose()

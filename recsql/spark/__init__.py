"""The Spark backend: `recsql train --backend spark` hands the read and the fit to Apache
Spark (MLlib's ALS), for ratings that outgrow one machine, and stores the result
through recsql's own write path, so versions, views and activation are the same.

:mod:`.session` starts and stops the SparkSession (master, settings, the JDBC driver,
the checkpoint directory); :mod:`.read` turns the ratings into a partitioned Spark
DataFrame (PostgreSQL over JDBC, anything else through recsql's own reader, handed over as Parquet or Arrow);
:mod:`.als` fits the biased model in Spark and brings the factors home as a
:class:`~recsql.algorithms.factors.Factors`.  pyspark is imported only inside these modules'
functions: recsql without the ``spark`` extra never loads it.
"""

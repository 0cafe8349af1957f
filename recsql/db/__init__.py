"""The database edge: engines and URLs (:mod:`~recsql.db.engine`), the tables
(:mod:`~recsql.db.tables`), their migrations (:mod:`~recsql.db.migrate`) and the bulk
paths in and out (:mod:`~recsql.db.bulk`).  Nothing here knows about models or solvers."""

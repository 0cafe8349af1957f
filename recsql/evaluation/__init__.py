"""Measuring models without storing them: held-out splits (:mod:`~recsql.evaluation.splits`),
metrics (:mod:`~recsql.evaluation.metrics`), evaluation (:mod:`~recsql.evaluation.evaluate`)
and grid tuning (:mod:`~recsql.evaluation.tuning`)."""

"""The pure middle: a fitted model (:mod:`~recsql.algorithms.factors`: the prediction formula
once, recommendations, similar movies), the solvers that fit one
(:mod:`~recsql.algorithms.solvers`), new users folded in (:mod:`~recsql.algorithms.foldin`), the
outputs a run stores (:mod:`~recsql.algorithms.outputs`) and top-K selection
(:mod:`~recsql.algorithms.topk`).  Nothing here touches a database."""

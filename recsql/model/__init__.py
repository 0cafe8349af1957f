"""The pure middle: a fitted model (:mod:`~recsql.model.factors`: the prediction formula
once, recommendations, similar movies), the solvers that fit one
(:mod:`~recsql.model.solvers`), new users folded in (:mod:`~recsql.model.foldin`), the
outputs a run stores (:mod:`~recsql.model.outputs`) and top-K selection
(:mod:`~recsql.model.topk`).  Nothing here touches a database."""

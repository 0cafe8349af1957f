"""Data in: file formats (:mod:`~recsql.data.files`), the application's own tables
(:mod:`~recsql.data.source`), the sparse rating matrix and its id maps
(:mod:`~recsql.data.matrix`), reading ratings into it (:mod:`~recsql.data.ratings`),
synthetic catalogues (:mod:`~recsql.data.synthetic`) and loading into recsql's tables
(:mod:`~recsql.data.imports`)."""

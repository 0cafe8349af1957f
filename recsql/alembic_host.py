"""Sharing a database with an application's own Alembic project.

recsql's tables, views and version table (``recsql_alembic_version``) belong to recsql's
own migrations (``recsql db upgrade``).  An application whose Alembic project uses the
same database would otherwise find them in the database but not in its models, and
``alembic revision --autogenerate`` would write a ``drop_table`` for each.  The two hooks
here hide them; the application's ``env.py`` passes both::

    from recsql.alembic_host import include_name, include_object

    context.configure(..., include_name=include_name, include_object=include_object)

``include_name`` keeps recsql's tables out of the reflection (their columns and indexes
with them); ``include_object`` also drops them from the comparison should they reach the
application's metadata.  An application with hooks of its own combines them, e.g.
``include_name=lambda *args: include_name(*args) and my_include_name(*args)``.

Only names in the default schema are hidden: that is where recsql puts its objects, and
an application table called ``ratings`` in another schema stays the application's.
(recsql kept in a schema of its own, with ``include_schemas=True``, is hidden by
returning False for that schema's name, ``type_ == "schema"``, in the application's hook.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import RECSQL_TABLES, RECSQL_VIEWS

# Everything recsql creates in a database, by name (indexes and constraints belong to these tables).
RECSQL_OBJECTS = frozenset((*RECSQL_TABLES, *RECSQL_VIEWS, VERSION_TABLE))


def is_recsql_table(name: str | None, schema: str | None = None) -> bool:
    """Whether ``name`` (in ``schema``; None is the default schema) is one of recsql's objects."""
    return schema is None and name in RECSQL_OBJECTS


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic's ``include_name`` hook: False for recsql's tables, views and version table,
    and for the columns, indexes and constraints of its tables; True for everything else."""
    if type_ == "table":
        return not is_recsql_table(name, parent_names.get("schema_name"))
    if "table_name" in parent_names:
        return not is_recsql_table(parent_names["table_name"], parent_names.get("schema_name"))
    return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: False for recsql's tables and for what hangs on
    them (columns, indexes, constraints), whether reflected or in the metadata."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is None or not hasattr(table, "name"):
        return True
    return not is_recsql_table(table.name, getattr(table, "schema", None))

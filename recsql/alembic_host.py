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

The hooks hide recsql's objects where recsql keeps them: in the default schema, or, with
recsql in a namespace of its own (``--schema recsql``), in that schema.  Alembic's hooks
get no connection, so they learn the namespace the way recsql's own commands do, from
``$RECSQL_SCHEMA``, or, better, from the application's ``env.py``, which cannot forget it::

    from recsql.alembic_host import hooks

    include_name, include_object = hooks(schema="recsql")
    context.configure(..., include_schemas=True,
                      include_name=include_name, include_object=include_object)

With ``include_schemas=True`` the namespace's ``include_name`` keeps the whole schema out
of the reflection.  Only recsql's objects are hidden: an application table called
``ratings`` anywhere else (in ``public`` beside recsql's namespace, in another schema
beside recsql in the default one) stays the application's and is compared as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from recsql.db.engine import resolve_schema
from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import RECSQL_TABLES, RECSQL_VIEWS, Base
from recsql.errors import InvalidParameter

# Everything recsql creates in a database, by name (indexes and constraints belong to these tables).
RECSQL_OBJECTS = frozenset((*RECSQL_TABLES, *RECSQL_VIEWS, VERSION_TABLE))

IncludeName = Callable[[str | None, str, Mapping[str, Any]], bool]
IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]


def _namespaces(schema: str | Iterable[str] | None = None) -> frozenset[str | None]:
    """The schemas recsql's objects live in, None being the default schema: ``schema``
    (a name, or several for several namespaces in one database), else
    ``$RECSQL_SCHEMA``, else the default schema."""
    if schema is None or isinstance(schema, str):
        return frozenset({resolve_schema(schema)})
    names = tuple(schema)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise InvalidParameter(f"recsql's schemas are one or more schema names, not {names!r}")
    return frozenset(resolve_schema(name) for name in names)


def is_recsql_table(name: str | None, schema: str | None = None) -> bool:
    """Whether ``name`` (in ``schema``; None is the default schema) is one of recsql's
    objects where recsql keeps them (``$RECSQL_SCHEMA``, else the default schema)."""
    return _is_recsql(name, schema, _namespaces())


def hooks(schema: str | Iterable[str] | None = None) -> tuple[IncludeName, IncludeObject]:
    """Alembic's ``(include_name, include_object)`` for recsql kept in ``schema``: the name
    given to ``--schema`` or ``recsql.connect(url, schema=...)`` (several for several
    namespaces), else ``$RECSQL_SCHEMA`` as it is now, else the default schema."""
    where = _namespaces(schema)
    return (
        lambda name, type_, parent_names: _include_name(name, type_, parent_names, where),
        lambda obj, name, type_, reflected, compare_to: _include_object(obj, type_, where),
    )


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic's ``include_name`` hook: False for recsql's tables, views and version table,
    and for the columns, indexes and constraints of its tables; True for everything else.
    With ``$RECSQL_SCHEMA`` set, False for that schema too (``include_schemas=True``)."""
    return _include_name(name, type_, parent_names, _namespaces())


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: False for recsql's tables and for what hangs on
    them (columns, indexes, constraints), whether reflected or in the metadata."""
    return _include_object(obj, type_, _namespaces())


def _is_recsql(name: str | None, schema: str | None, where: frozenset[str | None]) -> bool:
    return schema in where and name in RECSQL_OBJECTS


def _include_name(name: str | None, type_: str, parent_names: Mapping[str, Any], where: frozenset[str | None]) -> bool:
    if type_ == "schema":  # Alembic names the default schema None
        return name is None or name not in where
    if type_ == "table":
        return not _is_recsql(name, parent_names.get("schema_name"), where)
    if "table_name" in parent_names:
        return not _is_recsql(parent_names["table_name"], parent_names.get("schema_name"), where)
    return True


def _include_object(obj: Any, type_: str, where: frozenset[str | None]) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is None or not hasattr(table, "name"):
        return True
    if getattr(table, "metadata", None) is Base.metadata:
        return False  # recsql's own models, put into the application's metadata
    return not _is_recsql(table.name, getattr(table, "schema", None), where)

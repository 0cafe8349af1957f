"""An application's own Alembic project in recsql's database: with recsql's two hooks in
its env.py, ``alembic revision --autogenerate`` leaves recsql's objects alone; without
them it would drop every one.  The same with ``include_schemas=True`` and recsql in a
schema of its own, where the hooks must know that schema."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import alembic
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect

import recsql
from recsql.alembic_host import RECSQL_OBJECTS, hooks, include_name, include_object, is_recsql_table
from recsql.db.engine import SCHEMA_ENV
from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import RECSQL_TABLES, Base
from recsql.errors import InvalidParameter
from tests.conftest import ROOT

# What the embedding guide's "Embedding in an application's Alembic" tells an application to add.
HOOK_IMPORT = "from recsql.alembic_host import include_name, include_object"
HOOK_ARGUMENTS = "include_name=include_name, include_object=include_object"

# ... and what it tells one that reflects every schema, with recsql in schema "recsql".
NAMESPACE_HOOK_IMPORT = "from recsql.alembic_host import hooks"
NAMESPACE_HOOKS = 'include_name, include_object = hooks(schema="recsql")'
CONFIGURE = "context.configure(connection=connection, target_metadata=target_metadata,"
INCLUDE_SCHEMAS = "context.configure(connection=connection, target_metadata=target_metadata, include_schemas=True,"
NAMESPACE = "recsql"

ORDERS_TABLE = """
Table(
    "orders", target_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer", String(100), nullable=False),
    Column("total", Numeric(10, 2), nullable=False),
)
"""

# The application's own `ratings`, in public: recsql uses the name too, in its schema.
# Its models have a column (`comment`) that its migrations have not added yet.
RATINGS_TABLE = """
Table(
    "ratings", target_metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, nullable=False),
    Column("stars", Integer, nullable=False),
    Column("comment", String(200)),
)
"""

ENV_PY = f"""
from alembic import context
from sqlalchemy import Column, Integer, MetaData, Numeric, String, Table, create_engine

{HOOK_IMPORT}

target_metadata = MetaData()
{ORDERS_TABLE}

engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    {CONFIGURE}
                      {HOOK_ARGUMENTS})
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

FIRST_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001_orders"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer", sa.String(100), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )


def downgrade():
    op.drop_table("orders")
"""


# The namespaced host's first revision also creates its `ratings` (without `comment`).
RATINGS_REVISION = FIRST_REVISION.replace(
    """        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
""",
    """        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
    )
""",
).replace('op.drop_table("orders")', 'op.drop_table("ratings")\n    op.drop_table("orders")')


def host_project(
    folder: Path, url: str, *, hooks: bool = True, namespace: str = "", include_schemas: bool = False
) -> Config:
    """alembic.ini, env.py (with or without recsql's hooks), versions/0001_orders.py.

    ``namespace``: the application has its own ``ratings`` table too; ``"hooks"`` gives
    its env.py recsql's hooks for schema "recsql" (as the embedding guide shows), ``"plain"`` the
    module-level ones.  ``include_schemas``: the env.py reflects every schema."""
    scripts = folder / "host_migrations"
    (scripts / "versions").mkdir(parents=True)
    env_py = ENV_PY if hooks else ENV_PY.replace(HOOK_ARGUMENTS, "").replace(HOOK_IMPORT, "")
    first_revision = FIRST_REVISION
    if namespace:
        env_py = env_py.replace(ORDERS_TABLE, ORDERS_TABLE + RATINGS_TABLE)
        first_revision = RATINGS_REVISION
    if include_schemas:
        env_py = env_py.replace(CONFIGURE, INCLUDE_SCHEMAS)
    if namespace == "hooks":
        env_py = env_py.replace(HOOK_IMPORT, f"{NAMESPACE_HOOK_IMPORT}\n\n{NAMESPACE_HOOKS}")
    (scripts / "env.py").write_text(env_py)
    (scripts / "versions" / "0001_orders.py").write_text(first_revision)
    shutil.copy(Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako", scripts)
    ini = folder / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s/host_migrations\n")
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", url)
    return config


def autogenerate(config: Config) -> tuple[str, str]:
    """(upgrade body, whole file) of an autogenerated revision, which is then removed so
    the database stays at the host's head."""
    script = command.revision(config, message="check", autogenerate=True)
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    text = path.read_text()
    path.unlink()
    upgrade = text.split("def upgrade()", 1)[1].split("def downgrade()", 1)[0]
    return upgrade, text


def dropped_tables(text: str) -> set[str]:
    return set(re.findall(r"op\.drop_table\(['\"](\w+)['\"]", text))


def dropped_in(text: str, schema: str) -> set[str]:
    """Tables an autogenerated upgrade drops in ``schema``."""
    return set(re.findall(rf"op\.drop_table\(['\"](\w+)['\"], schema=['\"]{schema}['\"]\)", text))


def ops(upgrade: str) -> list[str]:
    """The upgrade's operations, one line each (their first line)."""
    return [line.strip() for line in upgrade.splitlines() if line.strip().startswith("op.")]


def test_host_autogenerate_ignores_recsql(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv(SCHEMA_ENV, raising=False)
    recsql.upgrade(db_url)  # the deploy order the production guide gives: recsql's migrations first
    with_hooks = host_project(tmp_path / "with", db_url)
    command.upgrade(with_hooks, "head")  # the host's own table and alembic_version

    upgrade, text = autogenerate(with_hooks)
    assert "op." not in upgrade, f"autogenerate found changes to make:\n{upgrade}"
    mentioned = {name for name in RECSQL_OBJECTS if re.search(rf"\b{name}\b", text)}
    assert mentioned == set(), f"the revision mentions recsql's {sorted(mentioned)}"

    # Without the hooks the same project would drop every table of recsql's and its
    # version table (so the assertion above can fail), and nothing of the host's.
    without = host_project(tmp_path / "without", db_url, hooks=False)
    upgrade, _ = autogenerate(without)
    assert dropped_tables(upgrade) == {*RECSQL_TABLES, VERSION_TABLE}

    # Both schemas live side by side, each at its own head.
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
        assert {"orders", "alembic_version", VERSION_TABLE, *RECSQL_TABLES} <= tables
    finally:
        engine.dispose()
    current, head = recsql.schema_status(db_url)
    assert current == head
    recsql.connect(db_url).dispose()  # recsql accepts the database with the host's tables in it


ADD_COMMENT = "op.add_column('ratings', sa.Column('comment', sa.String(length=200), nullable=True))"


def assert_only_the_applications_change(upgrade: str, text: str) -> None:
    """The revision adds the application's `ratings.comment` (public) and does nothing
    else: nothing to recsql's schema, nothing dropped."""
    assert ops(upgrade) == [ADD_COMMENT], f"autogenerate wrote:\n{upgrade}"
    assert NAMESPACE not in text, f"the revision mentions {NAMESPACE!r}:\n{text}"


@pytest.mark.parametrize("include_schemas", [True, False], ids=["include_schemas", "default_schema_only"])
def test_host_ignores_recsql_in_its_namespace(postgresql_url, tmp_path, monkeypatch, include_schemas):
    monkeypatch.delenv(SCHEMA_ENV, raising=False)
    recsql.connect(postgresql_url, schema=NAMESPACE).dispose()  # recsql set up in schema "recsql"
    host = host_project(tmp_path / "with", postgresql_url, namespace="hooks", include_schemas=include_schemas)
    command.upgrade(host, "head")  # the host's public.orders and public.ratings

    upgrade, text = autogenerate(host)
    assert_only_the_applications_change(upgrade, text)

    # The module-level hooks without $RECSQL_SCHEMA know only the default schema: the
    # same host with them (so the assertions above can fail) hides the application's
    # own `ratings` in public, and, reflecting every schema, drops every table of
    # recsql's and its version table in recsql's schema.
    plain = host_project(tmp_path / "plain", postgresql_url, namespace="plain", include_schemas=include_schemas)
    upgrade, _ = autogenerate(plain)
    assert "add_column" not in upgrade
    assert dropped_in(upgrade, NAMESPACE) == ({*RECSQL_TABLES, VERSION_TABLE} if include_schemas else set())

    # With $RECSQL_SCHEMA, as recsql's own commands take it, the module-level hooks
    # (the guide's first two lines) know the namespace too.
    monkeypatch.setenv(SCHEMA_ENV, NAMESPACE)
    upgrade, text = autogenerate(plain)
    assert_only_the_applications_change(upgrade, text)

    # recsql's schema is untouched and still recsql's; the application's ratings are its own.
    engine = create_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            assert {*RECSQL_TABLES, VERSION_TABLE} <= set(inspector.get_table_names(schema=NAMESPACE))
            assert set(inspector.get_table_names()) == {"orders", "ratings", "alembic_version"}
    finally:
        engine.dispose()
    recsql.connect(postgresql_url, schema=NAMESPACE).dispose()


def test_hooks_hide_recsql_names_only_in_the_default_schema(monkeypatch):
    monkeypatch.delenv(SCHEMA_ENV, raising=False)
    assert not include_name("ratings", "table", {"schema_name": None})
    assert not include_name(VERSION_TABLE, "table", {"schema_name": None})
    assert not include_name("ix_ratings_user_id_movie_id", "index", {"schema_name": None, "table_name": "ratings"})
    assert include_name("ratings", "table", {"schema_name": "shop"})
    assert include_name("orders", "table", {"schema_name": None})
    assert include_name("public", "schema", {})
    ratings = Base.metadata.tables["ratings"]
    assert not include_object(ratings, "ratings", "table", False, None)
    assert not include_object(ratings.c.user_id, "user_id", "column", True, None)
    assert not include_object(next(iter(ratings.indexes)), None, "index", True, None)


def test_namespace_hooks_hide_recsql_names_only_in_its_schema(monkeypatch):
    monkeypatch.delenv(SCHEMA_ENV, raising=False)
    name_hook, object_hook = hooks(schema=NAMESPACE)
    # include_schemas=True: recsql's schema stays out of the reflection, every other in.
    assert not name_hook(NAMESPACE, "schema", {})
    assert name_hook(None, "schema", {}) and name_hook("shop", "schema", {})
    assert include_name(NAMESPACE, "schema", {})  # the module-level hooks know no namespace
    assert not name_hook("ratings", "table", {"schema_name": NAMESPACE})
    assert not name_hook(VERSION_TABLE, "table", {"schema_name": NAMESPACE})
    assert not name_hook("ix_ratings_user_id_movie_id", "index", {"schema_name": NAMESPACE, "table_name": "ratings"})
    # The application's names, its own `ratings` in the default schema among them.
    assert name_hook("ratings", "table", {"schema_name": None})
    assert name_hook("ratings", "table", {"schema_name": "shop"})
    assert name_hook("orders", "table", {"schema_name": NAMESPACE})
    assert name_hook("ratings_pkey", "primary_key", {"schema_name": None, "table_name": "ratings"})

    applications = Table("ratings", MetaData(), Column("id", Integer, primary_key=True))
    assert object_hook(applications, "ratings", "table", False, None)
    assert object_hook(applications.c.id, "id", "column", False, None)
    reflected = Table("ratings", MetaData(), Column("id", Integer, primary_key=True), schema=NAMESPACE)
    assert not object_hook(reflected, "ratings", "table", True, None)
    assert not object_hook(reflected.c.id, "id", "column", True, None)
    # recsql's own models (schema None) put into the application's metadata stay hidden.
    ratings = Base.metadata.tables["ratings"]
    assert not object_hook(ratings, "ratings", "table", False, None)
    assert not object_hook(ratings.c.user_id, "user_id", "column", False, None)


def test_hooks_take_several_namespaces_and_refuse_a_bad_name(monkeypatch):
    monkeypatch.delenv(SCHEMA_ENV, raising=False)
    name_hook, _ = hooks(schema=[NAMESPACE, "recsql_staging"])
    assert not name_hook(NAMESPACE, "schema", {}) and not name_hook("recsql_staging", "schema", {})
    assert not name_hook("movies", "table", {"schema_name": "recsql_staging"})
    assert name_hook("movies", "table", {"schema_name": None})
    for bad in ("recsql; DROP", [], [NAMESPACE, ""]):
        with pytest.raises(InvalidParameter):
            hooks(schema=bad)


def test_hooks_take_the_namespace_from_the_environment(monkeypatch):
    monkeypatch.setenv(SCHEMA_ENV, NAMESPACE)
    for name_hook, object_hook in (hooks(), (include_name, include_object)):
        assert not name_hook(NAMESPACE, "schema", {})
        assert not name_hook("ratings", "table", {"schema_name": NAMESPACE})
        assert name_hook("ratings", "table", {"schema_name": None})
        assert object_hook(Table("ratings", MetaData()), "ratings", "table", False, None)
    assert is_recsql_table("ratings", NAMESPACE) and not is_recsql_table("ratings")
    # An explicit schema wins over the environment, as it does for recsql's commands.
    name_hook, _ = hooks(schema="elsewhere")
    assert name_hook(NAMESPACE, "schema", {}) and not name_hook("elsewhere", "schema", {})
    monkeypatch.delenv(SCHEMA_ENV)
    assert not is_recsql_table("ratings", NAMESPACE) and is_recsql_table("ratings")


@pytest.mark.parametrize("line", [HOOK_IMPORT, HOOK_ARGUMENTS, NAMESPACE_HOOK_IMPORT, NAMESPACE_HOOKS, INCLUDE_SCHEMAS])
def test_the_guide_shows_the_lines_the_test_uses(line):
    readme = (ROOT / "docs" / "howto" / "embed.md").read_text()
    section = readme.split("## Embedding in an application's Alembic", 1)[1].split("\n## ", 1)[0]
    assert line in section

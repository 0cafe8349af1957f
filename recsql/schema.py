"""Schema versions: Alembic, driven from code.

The migrations are the only way recsql's schema changes.  They live in the top-level
``migrations/`` folder of a checkout and are copied to ``recsql/migrations`` inside the
wheel; :func:`migrations_dir` finds whichever is there.

Policy, applied by :func:`ensure_current` before any command touches the data:

* a database with none of recsql's tables is set up at head (first use needs no step);
* a database at head is used as it is;
* a database at an older revision is refused with the one command that upgrades it;
* a database at a revision this recsql does not know (made by a newer recsql) is refused.

recsql keeps its revision in its own table, ``recsql_alembic_version``, so it never
collides with an application that uses Alembic for its own tables in the same database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from recsql.errors import SchemaError, SchemaOutOfDate
from recsql.models import RECSQL_TABLES

VERSION_TABLE = "recsql_alembic_version"
UPGRADE_COMMAND = "recsql db upgrade"


def migrations_dir() -> Path:
    """The Alembic script folder: inside the installed package, else the checkout's."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SchemaError(f"recsql's migrations are missing (looked in {package})")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code; env.py uses ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def all_revisions() -> list[str]:
    """Every known revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate to ``revision`` (default: the newest); returns the revision reached."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    with engine.connect() as connection:
        return current_revision(connection)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Migrate down to ``revision``; ``base`` removes every table and view recsql made."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
        if revision == "base":
            connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    with engine.connect() as connection:
        return current_revision(connection) if revision != "base" else None


def ensure_current(engine: Engine) -> None:
    """Set up a fresh database, accept a current one, refuse an outdated or unknown one."""
    with engine.connect() as connection:
        current = current_revision(connection)
        present = set(inspect(connection).get_table_names())
    head = head_revision()
    if current == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    fix = f"{UPGRADE_COMMAND} --database-url '{url}'"
    if current is None:
        ours = sorted(present & set(RECSQL_TABLES))
        if ours:
            raise SchemaError(
                f"the database has tables named like recsql's ({', '.join(ours)}) but no "
                f"recsql schema version; they belong to something else, so recsql will not "
                f"touch them. Use another database (or schema) for recsql."
            )
        upgrade(engine)
        return
    if current not in all_revisions():
        raise SchemaError(
            f"the database schema is at revision {current!r}, which this recsql does not "
            f"know (made by a newer recsql?); upgrade recsql itself"
        )
    raise SchemaOutOfDate(
        f"the database schema is at revision {current!r} but this recsql needs {head!r}; "
        f"run: {fix}"
    )

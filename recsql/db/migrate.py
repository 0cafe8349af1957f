"""Schema versions: Alembic, driven from code, and the engine every command starts from.

The migrations are the only way recsql's schema changes.  They live in the top-level
``migrations/`` folder of a checkout and are copied to ``recsql/migrations`` inside the
wheel; :func:`migrations_dir` finds whichever is there.

Policy, applied by :func:`connect` (through :func:`ensure_current`) before any command
touches the data:

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
from sqlalchemy.exc import SQLAlchemyError

from recsql.db.engine import SCHEMA_ENV, make_engine
from recsql.db.lock import setup_lock
from recsql.db.tables import RECSQL_TABLES
from recsql.errors import InvalidParameter, SchemaError, SchemaOutOfDate

VERSION_TABLE = "recsql_alembic_version"


def migrations_dir() -> Path:
    """The Alembic script folder: inside the installed package, else the checkout's."""
    package = Path(__file__).resolve().parents[1]  # recsql/
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
    """The newest revision this recsql knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "recsql ships at least one migration"
    return head


def own_tables(connection: Connection) -> list[str]:
    """The tables in recsql's own namespace (PostgreSQL's reflection would otherwise list
    every table on the search_path, the application's behind recsql's schema too)."""
    return inspect(connection).get_table_names(schema=connection.dialect.default_schema_name)


def all_revisions() -> list[str]:
    """Every known revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    """The database's recsql revision; None when recsql has not set it up."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def connect(
    url: str | None = None,
    *,
    schema: str | None = None,
    check_schema: bool = True,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
) -> Engine:
    """An engine for ``url`` (else ``$RECSQL_DATABASE_URL``, else ``sqlite:///recsql.db``),
    with recsql's objects in ``schema`` (else ``$RECSQL_SCHEMA``) and waits for locks
    bounded by ``lock_timeout`` seconds (else ``$RECSQL_LOCK_TIMEOUT``, else 30; see
    :func:`recsql.db.engine.make_engine`); ``statement_timeout`` seconds bound every
    statement (PostgreSQL; serving sets it, commands that load or train do not).

    A database without recsql's tables is set up; one at an older schema revision is
    refused with the command that upgrades it (:class:`~recsql.errors.SchemaOutOfDate`).
    ``check_schema=False`` skips that (for the ``recsql db`` commands themselves).
    """
    engine = make_engine(url, schema, lock_timeout=lock_timeout, statement_timeout=statement_timeout)
    if check_schema:
        try:
            ensure_current(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def upgrade(
    url: str | None = None, revision: str = "head", *, schema: str | None = None, lock_timeout: float | None = None
) -> str | None:
    """Migrate the database to ``revision`` (default: the newest); returns the revision reached.

    A namespace without recsql's schema version that holds tables named like recsql's
    (the application's own ``ratings``, say) is refused with the one option that fixes
    it, before anything is created."""
    engine = make_engine(url, schema, lock_timeout=lock_timeout)
    try:
        with engine.connect() as connection:
            if current_revision(connection) is None:
                _refuse_foreign_tables(set(own_tables(connection)))
        return _upgrade(engine, revision)
    finally:
        engine.dispose()


def downgrade(
    url: str | None = None,
    revision: str = "base",
    *,
    yes: bool = False,
    schema: str | None = None,
    lock_timeout: float | None = None,
) -> str | None:
    """Migrate down; ``base`` removes every table and view recsql created, nothing else.

    A downgrade to a revision takes the newer views away but keeps every row, so an
    upgrade afterwards serves the same models (:mod:`recsql.db.evolve`).  ``base``
    deletes everything, so while any of recsql's tables holds rows it is refused
    unless ``yes``.
    """
    engine = make_engine(url, schema, lock_timeout=lock_timeout)
    try:
        if not yes and revision == "base":
            with engine.connect() as connection:
                present = set(own_tables(connection)) & set(RECSQL_TABLES)
                filled = [
                    t
                    for t in sorted(present)
                    if connection.execute(text(f"SELECT 1 FROM {t} LIMIT 1")).first() is not None
                ]
            if filled:
                raise InvalidParameter(
                    f"a downgrade to base deletes every recsql table, and {', '.join(filled)} hold rows; "
                    "pass --yes to delete them"
                )
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
            if revision == "base":
                connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        with engine.connect() as connection:
            return current_revision(connection) if revision != "base" else None
    finally:
        engine.dispose()


def schema_status(url: str | None = None, *, schema: str | None = None) -> tuple[str | None, str]:
    """(current revision, newest revision) of the database's recsql schema."""
    engine = make_engine(url, schema)
    try:
        with engine.connect() as connection:
            return current_revision(connection), head_revision()
    finally:
        engine.dispose()


def _upgrade(engine: Engine, revision: str = "head") -> str | None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    with engine.connect() as connection:
        return current_revision(connection)


SETUP_WAIT_SECONDS = 60.0


def _set_up(engine: Engine) -> None:
    """Create recsql's schema in a fresh database: one process at a time (two commands
    on a brand-new database must not both create it) and all or nothing (DDL runs in
    one transaction on both databases, so a failure leaves no table behind)."""
    with setup_lock(engine, SETUP_WAIT_SECONDS):
        with engine.connect() as connection:
            if current_revision(connection) is not None:
                return  # another process set it up while this one waited
        try:
            _upgrade(engine)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise SchemaError(
                f"setting up recsql's tables failed, so nothing was created: {reason} "
                f"(a table or view of the application may have one of recsql's names)"
            ) from None


def _refuse_foreign_tables(present: set[str]) -> None:
    """Tables named like recsql's in a namespace recsql has not set up belong to someone
    else: recsql will not touch them, and says how to give it a namespace of its own."""
    ours = sorted(present & set(RECSQL_TABLES))
    if ours:
        raise SchemaError(
            f"the database has tables named like recsql's ({', '.join(ours)}) but no "
            f"recsql schema version; they belong to something else, so recsql will not "
            f"touch them. Give recsql a namespace of its own: --schema recsql "
            f"(or ${SCHEMA_ENV}=recsql; recsql.connect(url, schema='recsql'))."
        )


def ensure_current(engine: Engine) -> None:
    """Set up a fresh database, accept a current one, refuse an outdated or unknown one."""
    with engine.connect() as connection:
        current = current_revision(connection)
        present = set(own_tables(connection))
    head = head_revision()
    if current == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    fix = f"recsql --database-url '{url}' db upgrade" + (
        " (with your password where *** is)" if engine.url.password else ""
    )
    if current is None:
        _refuse_foreign_tables(present)
        _set_up(engine)
        return
    if current not in all_revisions():
        raise SchemaError(
            f"the database schema is at revision {current!r}, which this recsql does not "
            f"know (made by a newer recsql?); upgrade recsql itself"
        )
    raise SchemaOutOfDate(f"the database schema is at revision {current!r} but this recsql needs {head!r}; run: {fix}")

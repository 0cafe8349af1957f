"""Alembic environment for recsql.

Run from code (recsql.db.migrate passes an open connection in ``config.attributes``) or from
the command line with the top-level alembic.ini, where the URL comes from ``-x url=...``,
else ``$RECSQL_DATABASE_URL``, else ``sqlite:///recsql.db``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from recsql.db.engine import normalize_url, resolve_url
from recsql.db.migrate import VERSION_TABLE
from recsql.db.tables import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

OPTIONS = dict(
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER by copying tables
    compare_type=True,
)


def run_migrations_offline() -> None:
    url = normalize_url(context.get_x_argument(as_dictionary=True).get("url") or resolve_url())
    context.configure(url=url, literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = normalize_url(context.get_x_argument(as_dictionary=True).get("url") or resolve_url())
    engine = create_engine(url)
    with engine.begin() as connection:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

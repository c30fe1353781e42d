"""Alembic environment: migrates the database named by the caller, or the configured one.

The URL comes from, in order: a connection or `database_url` in `config.attributes` (programmatic
use, see db/setup.py), `alembic -x url=…`, `sqlalchemy.url` set on the config, and finally
`config.settings.get_settings().effective_database_url` (GEC_DATABASE_URL or the SQLite default).
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from config.settings import get_settings
from db.engine import new_engine, normalize_url
from db.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

# From the `alembic` command line (there is no alembic.ini with a logging section): show its progress.
if config.cmd_opts is not None and not logging.getLogger().handlers:
    logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s", level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.INFO)


def database_url() -> str:
    """Return the URL to migrate, as described in the module docstring."""
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or _ini_option("sqlalchemy.url")
        or get_settings().effective_database_url
    )
    return normalize_url(url).render_as_string(hide_password=False)


def _ini_option(name: str) -> str | None:
    # Without an alembic.ini (the usual case: pyproject.toml) the section is absent and
    # get_main_option would raise; a URL set with Config.set_main_option still lands here.
    if config.file_config.has_section(config.config_ini_section):
        return config.get_main_option(name)
    return None


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render app-only column types as plain SQLAlchemy ones, so migrations import no app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    """Configure the migration context for a live connection or, offline, a URL."""
    if connection is not None:
        dialect = connection.dialect.name
    else:
        dialect = normalize_url(url or "").get_backend_name()
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=dialect == "sqlite",
        # db.engine makes SQLite emit a real BEGIN, so a failed migration rolls back there too.
        transactional_ddl=True if dialect == "sqlite" else None,
        compare_type=True,
        render_item=render_item,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations in one transaction."""
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Batch rebuilds ran with foreign keys off: prove nothing was left dangling.
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows violating foreign keys: {broken[:5]}")


def run_migrations_offline() -> None:
    """Emit the SQL to stdout (`alembic upgrade --sql`) instead of running it."""
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    given = config.attributes.get("connection")
    if given is not None:
        run_migrations(given)
        return
    engine = new_engine(database_url(), foreign_keys=False)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

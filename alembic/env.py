"""Alembic environment: same URL and models as the service, batch mode for SQLite-family stores."""

from alembic import context
from sqlalchemy import Connection

from backend.core.config import settings
from backend.core.db import make_engine
from backend.core.logging import configure_logging
from backend.core.startup_errors import exit_on_configuration_error
from backend.models import Base

config = context.config
if config.attributes.get("configure_logger", True):
    # The server's format (one JSON object per line), so both can go to one log.
    configure_logging(settings.LOG_LEVEL)

target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    # Batch mode rebuilds tables for ALTERs that SQLite (and so deltadb) cannot do in place.
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=settings.DATABASE_URL, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # Tests hand over an open connection so migrations run on their engine.
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    # No foreign-key enforcement while migrating (see make_engine): batch rebuilds must not
    # cascade-delete rows of child tables.
    engine = make_engine(settings.DATABASE_URL, enforce_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


with exit_on_configuration_error(database_url=settings.DATABASE_URL):
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()

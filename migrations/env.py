"""Alembic environment: the schema is core's metadata, the URL is the service's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from core.settings import get_settings
from core.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # `d2l-service migrate` passes the URL it was given; the alembic CLI falls back to settings.
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

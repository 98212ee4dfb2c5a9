"""Bring a database to the newest schema with Alembic (on start, and `d2l-service migrate`)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

log = logging.getLogger(__name__)


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and at `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # ConfigParser treats % as interpolation; URLs may hold escaped characters.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Apply every migration not yet applied; a no-op on an up-to-date database."""
    command.upgrade(alembic_config(database_url), "head")
    log.info("database schema is up to date")

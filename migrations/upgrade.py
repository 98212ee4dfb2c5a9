"""Bring a database to the newest schema with Alembic (on start, and `d2l-service migrate`).

It lives beside the revisions it applies: `migrations` reads core's tables, and core never
reads `migrations`, so the two import one way."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x64326C  # "d2l": one PostgreSQL advisory lock for every migrator


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and at `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    # ConfigParser treats % as interpolation; URLs may hold escaped characters.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@contextmanager
def migration_lock(database_url: str) -> Iterator[None]:
    """Held while one process migrates: processes that start at once (two `up`s on a fresh
    data directory, the API and its worker) migrate one after the other, and the later ones
    find nothing to do instead of failing on `table already exists`."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                try:
                    yield
                finally:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
        finally:
            engine.dispose()
    elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(f"{url.database}.migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
            yield
    else:
        yield


def upgrade(database_url: str) -> None:
    """Apply every migration not yet applied; a no-op on an up-to-date database."""
    with migration_lock(database_url):
        command.upgrade(alembic_config(database_url), "head")
    log.info("database schema is up to date")

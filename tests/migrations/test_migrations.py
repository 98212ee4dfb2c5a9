"""Alembic owns the schema: after `upgrade head` the database matches the ORM exactly."""

import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from core.db import Database
from core.tables import Base
from migrations.upgrade import alembic_config, migration_lock, upgrade
from tests.services import fresh_postgres_database


def test_the_migrations_produce_exactly_the_orm_schema(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, Base.metadata) == []


def test_the_revisions_form_one_line_of_history(db: Database) -> None:
    script = ScriptDirectory.from_config(alembic_config(db.url))
    assert len(script.get_heads()) == 1
    with db.engine.connect() as connection:
        assert (
            MigrationContext.configure(connection).get_current_revision()
            == script.get_current_head()
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_second_migrator_waits_for_the_first_and_finds_nothing_to_do(
    backend: str, tmp_path: Path
) -> None:
    """Two `up`s started at once on a fresh data directory both came up: the one that finds the
    lock held migrates after it, instead of failing on `table already exists`."""
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'd2l.sqlite3'}"
        else:
            url = stack.enter_context(fresh_postgres_database())
        errors: list[BaseException] = []

        def migrate() -> None:
            try:
                upgrade(url)
            except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
                errors.append(error)

        with migration_lock(url):
            second = threading.Thread(target=migrate)
            second.start()
            second.join(timeout=1.0)
            assert second.is_alive(), "the second migrator did not wait for the lock"
            command.upgrade(alembic_config(url), "head")  # the first one's work, lock held
        second.join(timeout=60)
        assert not second.is_alive() and errors == []
        engine = create_engine(url)
        try:
            assert "jobs" in inspect(engine).get_table_names()
        finally:
            engine.dispose()

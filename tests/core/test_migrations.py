"""Alembic owns the schema: after `upgrade head` the database matches the ORM exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.db import Database
from core.migrate import alembic_config
from core.tables import Base


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

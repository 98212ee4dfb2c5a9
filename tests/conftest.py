"""Fixtures shared by every test: isolated settings, a migrated database, an app client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.artifacts import ArtifactStore
from core.db import Database
from core.queue import JobQueue
from core.settings import Settings
from migrations.upgrade import upgrade
from tests.factories import migrated
from tests.services import fresh_postgres_database


class RecordingQueue:
    """Stands in for the broker in API tests: records what the API enqueued."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.steps: list[str] = []  # sweeps whose controller step was asked for
        self.fail_with: Exception | None = None

    def enqueue(
        self,
        job_id: str,
        *,
        queue: str,
        time_limit_s: float | None = None,
        priority: str = "normal",
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((job_id, queue))

    send_again = JobQueue.send_again  # the real one: it reads the stored request, then enqueues

    def enqueue_sweep_step(self, sweep_id: str, *, queue: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.steps.append(sweep_id)

    def check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """The same tests on the embedded SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        settings.ensure_dirs()
        yield settings.database_url
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.engine.dispose()


@pytest.fixture
def sqlite_db(settings: Settings) -> Iterator[Database]:
    database = migrated(settings)
    yield database
    database.engine.dispose()


@pytest.fixture
def store(settings: Settings) -> ArtifactStore:
    return ArtifactStore(settings.artifacts)


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def client(settings: Settings, sqlite_db: Database, queue: RecordingQueue) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.job_queue = queue
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def fashion_60k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A datasets directory holding Fashion-MNIST-format data of the real size (60,000 + 10,000
    IDX images), written once per test session."""
    from tests.fashion import write_fashion_format

    return write_fashion_format(tmp_path_factory.mktemp("fashion-60k"))

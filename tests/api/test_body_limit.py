"""Bodies over their limit are a 413 before anything parses or stores them."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from migrations.upgrade import upgrade
from tests.conftest import RecordingQueue


@pytest.fixture
def small_client(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", request_max_bytes=4096, upload_max_bytes=10_000)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    with TestClient(app) as client:
        yield client, settings


def test_a_json_body_over_the_limit_is_a_413_naming_it(small_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = small_client
    answer = client.post(
        "/v1/jobs",
        content=b"{" + b" " * 10_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413 and "4096 bytes" in answer.json()["detail"]
    small = client.post(
        "/v1/jobs", json={"model": {"arch": "lenet"}, "dataset": {"name": "digits"}}
    )
    assert small.status_code == 202


def test_a_chunked_body_is_counted_and_cut_off(small_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = small_client

    def chunks() -> Iterator[bytes]:
        yield b'{"model": {"arch": "lenet"}, "pad": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    answer = client.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


def test_an_upload_over_the_limit_is_refused_before_it_is_spooled(small_client) -> None:  # type: ignore[no-untyped-def]
    client, settings = small_client
    answer = client.post("/v1/datasets", files={"file": ("big.npz", b"\0" * 2_000_000)})
    assert answer.status_code == 413
    uploads = settings.datasets_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())

"""GET /: the read-only page loads in a real browser and shows the service's jobs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import Database
from core.jobs import metrics, queries
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.factories import add_job
from tests.live_server import serve
from tests.services import require_chromium


def test_the_page_is_served_without_outside_resources(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in response.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)  # no CDN


@pytest.fixture
def base_url(settings: Settings, sqlite_db: Database) -> Iterator[str]:
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    with serve(app) as url:
        yield url


def dump_dom(url: str) -> str:
    """The DOM after the page's scripts ran, as headless Chromium sees it."""
    command = [
        require_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_a_browser_lists_the_experiment_and_shows_a_job_with_its_curves(
    base_url: str, sqlite_db: Database
) -> None:
    with sqlite_db.transaction() as session:
        job = add_job(session, experiment="browser-check")
        queries.mark_running(session, job=job, worker="w", device="cpu")
        for epoch in (1, 2):
            values = {("train", "loss"): 1 / epoch, ("train", "acc"): 0.5, ("val", "acc"): 0.4}
            metrics.record_epoch(session, job_id=job.id, epoch=epoch, step=epoch, values=values)
        queries.finish_job(session, job=job, status="succeeded", result={"test_acc": 0.75})
        job_id = job.id

    index = dump_dom(f"{base_url}/")
    assert "browser-check (1)" in index and job_id[:12] in index

    page = dump_dom(f"{base_url}/#job={job_id}")
    assert f"Job {job_id}" in page
    assert 'id="status">succeeded' in page
    assert '"test_acc": 0.75' in page  # the result, fetched when the stream ended

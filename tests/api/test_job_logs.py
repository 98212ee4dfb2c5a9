"""GET /v1/jobs/{id}/logs: what the worker logged while it ran the job, and nothing else."""

from __future__ import annotations

import logging
import threading

from fastapi.testclient import TestClient

from core.db import Database
from core.jobs.logs import capture
from core.settings import Settings
from tests.factories import add_job


def test_logs_hold_what_the_job_thread_logged(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    assert client.get(f"/v1/jobs/{job_id}/logs").text == ""  # queued: nothing yet

    log = logging.getLogger("worker.runner")
    previous = log.level
    log.setLevel(logging.INFO)
    try:
        with capture(settings.artifacts, job_id):
            log.info("job %s epoch 1/2: train_loss=0.5", job_id)
            other = threading.Thread(target=log.info, args=("heartbeat from another thread",))
            other.start()
            other.join()
            log.warning("job %s epoch 2/2: train_loss=0.25", job_id)
        log.info("logged after the job: not in its log")
    finally:
        log.setLevel(previous)

    text = client.get(f"/v1/jobs/{job_id}/logs").text
    assert "epoch 1/2" in text and "WARNING worker.runner" in text
    assert "another thread" not in text and "after the job" not in text
    tail = client.get(f"/v1/jobs/{job_id}/logs", params={"tail": 1}).text
    assert tail.count("\n") == 1 and "epoch 2/2" in tail


def test_logs_of_an_unknown_job_are_a_404(client: TestClient) -> None:
    response = client.get("/v1/jobs/nope/logs")
    assert response.status_code == 404 and "nope" in response.json()["detail"]

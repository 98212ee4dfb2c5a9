"""POST /v1/jobs/{id}/cancel: a queued job never starts; a running one is asked to stop."""

from fastapi.testclient import TestClient

from core.db import Database
from core.jobs import queries
from tests.api.test_jobs import BODY
from tests.conftest import RecordingQueue


def test_a_queued_job_is_cancelled_at_once_and_a_second_cancel_is_a_409(
    client: TestClient, queue: RecordingQueue
) -> None:
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{job_id}").json()["error"] == "cancelled before it started"
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_a_running_job_is_asked_to_stop(client: TestClient, sqlite_db: Database) -> None:
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    with sqlite_db.transaction() as session:
        job = queries.get_job(session, job_id=job_id)
        queries.mark_running(session, job=job, worker="w1", device="cpu")
    answer = client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert (answer["status"], answer["cancel_requested"], answer["attempts"]) == (
        "running",
        True,
        1,
    )


def test_cancelling_an_unknown_job_is_a_404(client: TestClient) -> None:
    assert client.post("/v1/jobs/" + "0" * 32 + "/cancel").status_code == 404


def test_a_time_limit_above_the_services_is_refused(client: TestClient) -> None:
    answer = client.post("/v1/jobs", json={**BODY, "time_limit_s": 10**6})
    assert answer.status_code == 422 and "D2L_JOB_TIME_LIMIT_S" in answer.json()["detail"]
    assert client.post("/v1/jobs", json={**BODY, "time_limit_s": 600}).status_code == 202

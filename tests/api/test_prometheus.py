"""GET /metrics: Prometheus text that a scraper parses, counting by route template."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from core import workers
from core.auth import tokens
from core.db import Database
from core.jobs import queries
from core.settings import Settings
from core.tables import new_id
from tests.api.conftest import Trained
from tests.factories import add_job, job_spec, migrated
from tests.services import fresh_redis_url


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_template_and_jobs_by_status(
    client: TestClient, sqlite_db: Database
) -> None:
    with sqlite_db.transaction() as session:
        job_ids = [add_job(session).id for _ in range(2)]
        workers.register_worker(session, hostname="w1@box", queues=["cpu"], devices=[])
    for job_id in job_ids:
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    assert client.get("/v1/jobs/missing").status_code == 404
    assert client.get("/no/such/path").status_code == 404

    samples = scrape(client)
    route = (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "200"))
    assert samples[("d2l_http_requests_total", route)] == 2
    missing = (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404"))
    assert samples[("d2l_http_requests_total", missing)] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert samples[("d2l_http_requests_total", unmatched)] == 1
    timed = (("le", "+Inf"), ("method", "GET"), ("route", "/v1/jobs/{job_id}"))
    assert samples[("d2l_http_request_duration_seconds_bucket", timed)] == 3
    assert samples[("d2l_jobs", (("status", "queued"),))] == 2
    assert samples[("d2l_jobs", (("status", "succeeded"),))] == 0
    assert samples[("d2l_worker_up", (("worker", "w1@box"),))] == 1
    assert ("d2l_worker_last_seen_timestamp_seconds", (("worker", "w1@box"),)) in samples
    assert samples[("d2l_queue_depth", (("queue", "cpu"),))] == 0  # RecordingQueue sent nothing


def test_predict_forward_passes_are_measured(trained: Trained) -> None:
    before = scrape(trained.client)
    sample = [[0.0] * 8] * 8
    for inputs in ([sample, sample], [sample]):
        body = {"inputs": inputs}
        answer = trained.client.post(f"/v1/models/{trained.model_id}/predict", json=body)
        assert answer.status_code == 200, answer.text
    after = scrape(trained.client)

    def grew(name: str) -> float:
        return after[(name, ())] - before.get((name, ()), 0.0)

    assert grew("d2l_predict_batch_samples_count") == 2  # two forward passes...
    assert grew("d2l_predict_batch_samples_sum") == 3  # ...of 2 and 1 samples
    assert grew("d2l_predict_batch_requests_sum") == 2  # one request each, sequential clients
    assert grew("d2l_predict_forward_seconds_sum") > 0


def test_queue_depth_counts_every_priority_waiting_in_redis(settings: Settings) -> None:
    """Kombu keeps one Redis list per priority step: normal jobs wait in `cpu\\x06\\x163`."""
    with fresh_redis_url() as redis_url:
        config = settings.model_copy(update={"broker_url": redis_url})
        migrated(config).engine.dispose()
        app = create_app(config)
        for priority in ("high", "normal", "normal", "low"):
            app.state.job_queue.enqueue(new_id(), queue="cpu", priority=priority)
        with TestClient(app) as client:
            samples = scrape(client)
    assert samples[("d2l_queue_depth", (("queue", "cpu"),))] == 4
    assert samples[("d2l_queue_depth", (("queue", "gpu"),))] == 0


def test_with_auth_on_job_counts_are_the_scraping_owners_own(settings: Settings) -> None:
    config = settings.model_copy(update={"auth": True})
    db = migrated(config)
    with db.transaction() as session:
        for owner in ("alice", "bob", "bob"):
            queries.create_job(session, spec=job_spec(), queue="cpu", owner=owner)
        _, secret = tokens.create_token(session, owner="alice")
    db.engine.dispose()
    with TestClient(create_app(config)) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        samples = scrape(client)
    assert samples[("d2l_jobs", (("status", "queued"),))] == 1  # alice's; bob's two unseen

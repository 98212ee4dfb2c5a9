"""`GET /metrics` in Prometheus' text format (prometheus-client).

- `d2l_http_requests_total` and `d2l_http_request_duration_seconds`, by method, route template
  (`/v1/jobs/{job_id}`, never the raw path, so ids do not explode the series) and status;
- `d2l_jobs` by status (with auth on, of the scraping token's owner only), `d2l_queue_depth` by
  queue (messages waiting in the broker, every priority's, where that is cheap to ask: the
  embedded filesystem broker or Redis), read from the database and broker at scrape time;
- `d2l_worker_last_seen_timestamp_seconds` and `d2l_worker_up` (heartbeat fresher than
  `D2L_HEARTBEAT_TIMEOUT_S`);
- `d2l_predict_batch_samples`, `d2l_predict_batch_requests` and `d2l_predict_forward_seconds`:
  each batched forward pass of the predict path (how well micro-batching gathers requests).

Each app has its own registry (`app.state.metrics_registry`), so several apps in one process
(tests) never clash. With `--workers N`, each uvicorn process counts its own requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any, get_args

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import OwnerDep
from api.openapi import text_content
from core.auth.ownership import scope_to_owner
from core.db import Database
from core.jobs.schemas import JobStatus
from core.queue import QUEUES, JobQueue
from core.tables import Job, utcnow
from core.workers import is_alive, list_workers

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
UNMATCHED = "<unmatched>"  # 404s: one series, whatever path was asked for


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        labels = ("method", "route", "status")
        self.requests = Counter(
            "d2l_http_requests", "HTTP requests answered", labels, registry=registry
        )
        self.latency = Histogram(
            "d2l_http_request_duration_seconds",
            "Time to answer an HTTP request (streams: until they close)",
            ("method", "route"),
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"]
            self.requests.labels(method, route, str(status[0])).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


class ServiceCollector(Collector):
    """Queues and workers, read when Prometheus scrapes (nothing kept in memory)."""

    def __init__(self, db: Database, job_queue: JobQueue, *, alive_within_s: float) -> None:
        self.db = db
        self.job_queue = job_queue
        self.alive_within_s = alive_within_s  # the heartbeat timeout

    def collect(self) -> Iterator[Any]:
        seen = GaugeMetricFamily(
            "d2l_worker_last_seen_timestamp_seconds", "Last heartbeat", labels=["worker"]
        )
        up = GaugeMetricFamily("d2l_worker_up", "1 while the heartbeat is fresh", labels=["worker"])
        now = utcnow()
        with self.db.sessions() as session:
            for worker in list_workers(session):
                alive = is_alive(worker, now=now, within_s=self.alive_within_s)
                seen.add_metric([worker.hostname], worker.last_seen.timestamp())
                up.add_metric([worker.hostname], 1.0 if alive else 0.0)
        yield from (seen, up)
        try:
            depths = {queue: self.job_queue.waiting(queue) for queue in QUEUES}
        except Exception as error:  # noqa: BLE001  (a broker hiccup must not fail the scrape)
            log.warning("queue depth unavailable: %s", error)
            return
        depth = GaugeMetricFamily("d2l_queue_depth", "Messages waiting", labels=["queue"])
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        yield depth


class JobCounts(Collector):
    """Jobs by status, as the scraper may see them: with auth on, its token's owner's only."""

    def __init__(self, db: Database, owner: str | None) -> None:
        self.db = db
        self.owner = owner

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily("d2l_jobs", "Jobs by status", labels=["status"])
        with self.db.sessions() as session:
            scope_to_owner(session, self.owner)
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
        for status in get_args(JobStatus):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs


class PredictMetrics:
    """Each batched forward pass of the predict path: samples and requests it served, time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Histogram(
            "d2l_predict_batch_samples",
            "Samples per batched forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
            registry=registry,
        )
        self.requests = Histogram(
            "d2l_predict_batch_requests",
            "Requests answered by one forward pass (micro-batching at work when above 1)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )
        self.seconds = Histogram(
            "d2l_predict_forward_seconds",
            "Time of one batched forward pass",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )

    def observe(self, samples: int, requests: int, seconds: float) -> None:
        self.samples.observe(samples)
        self.requests.observe(requests)
        self.seconds.observe(seconds)


def install_metrics(app: FastAPI, *, db: Database, job_queue: JobQueue) -> None:
    """Give `app` its registry, the request middleware, the scrape-time collector, and the
    predict path's batch observer."""
    registry = CollectorRegistry()
    alive_within_s = app.state.settings.heartbeat_timeout_s
    registry.register(ServiceCollector(db, job_queue, alive_within_s=alive_within_s))
    app.state.serving.observe_batch = PredictMetrics(registry).observe
    app.state.metrics_registry = registry
    app.add_middleware(RequestMetrics, registry=registry)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=text_content("text/plain", "Prometheus' text exposition format"),
)
def prometheus_metrics(request: Request, owner: OwnerDep) -> Response:
    """With auth on, `d2l_jobs` counts the token owner's jobs only; the rest is the service's."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    text = generate_latest(registry) + generate_latest(JobCounts(request.app.state.db, owner))
    return Response(text, media_type=CONTENT_TYPE_LATEST)

"""The event loop never waits: under a crowd of chart, log and metrics requests, or while a big
sweep is checked, `/healthz` and a prediction keep answering at once.

A real server (uvicorn in a thread) on PostgreSQL, so the database pool is what it is in
production. Before this was fixed, the 16th concurrent chart waited the pool's 30 s checkout
timeout on the event loop itself, and a sweep's trial checks ran there for seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import SessionRoute, get_session
from core.artifacts import open_artifact_store
from core.db import POOL_OVERFLOW, Database
from core.registry import queries as registry
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.factories import add_job, migrated
from tests.live_server import serve
from tests.services import fresh_postgres_database
from worker.runner import JobRunner

EXPERIMENT = "loop"
LOAD = 48  # concurrent slow requests: three times the old pool (5 + 10 overflow)
ANSWER_WITHIN_S = 1.0  # /healthz and a prediction, while the load runs (the bound)
SWEEP_DELAY_S = 0.1  # how much a sweep's checks may delay /healthz (the bound)
# A loop that runs the checks itself stalls every probe for seconds; a probe's wait past
# SWEEP_DELAY_S but under this is the OS running another process on a loaded 2-core machine.
STALL_S = 0.5
CROWD = 100  # reads at once on two threads
SAMPLE = {"inputs": [[[0.0] * 8] * 8]}  # one digit, as the dataset stores it
# Twenty fields a resnet18 job on digits takes, fifty valid values each: the largest space the
# schema allows, and every value a job of its own (the old code built a net for each, 16 s).
FIELDS = {
    "hyperparameters.epochs": lambda i: i + 1,
    "hyperparameters.batch_size": lambda i: i + 1,
    "hyperparameters.lr": lambda i: (i + 1) / 100,
    "hyperparameters.momentum": lambda i: i / 100,
    "hyperparameters.weight_decay": lambda i: i / 100,
    "hyperparameters.label_smoothing": lambda i: i / 100,
    "hyperparameters.grad_clip_norm": lambda i: i + 1,
    "hyperparameters.init_std": lambda i: (i + 1) / 10,
    "hyperparameters.init_value": lambda i: i / 10,
    "hyperparameters.seed": lambda i: i,
    "hyperparameters.keep_checkpoints": lambda i: i + 1,
    "hyperparameters.lr_schedule.warmup_epochs": lambda i: i,
    "hyperparameters.lr_schedule.step_size": lambda i: i + 1,
    "hyperparameters.lr_schedule.gamma": lambda i: (i + 1) / 50,
    "hyperparameters.lr_schedule.min_lr_ratio": lambda i: i / 50,
    "hyperparameters.lr_schedule.pct_start": lambda i: (i + 1) / 51,
    "hyperparameters.early_stopping.patience": lambda i: i + 1,
    "hyperparameters.early_stopping.min_delta": lambda i: i / 100,
    "hyperparameters.augmentation.random_crop_padding": lambda i: i,
    "hyperparameters.augmentation.brightness": lambda i: i / 50,
}


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings
    job_id: str
    model_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A trained MLP (its metrics, log and model) in PostgreSQL, behind a real server."""
    with fresh_postgres_database() as url:
        settings = Settings(data_dir=tmp_path_factory.mktemp("loop"), database_url=url)
        db = migrated(settings)
        with db.transaction() as session:
            job_id = add_job(
                session,
                experiment=EXPERIMENT,
                model={"arch": "mlp", "config": {"hidden_sizes": [16]}},
                hyperparameters={"epochs": 3, "batch_size": 64},
            ).id
        store = open_artifact_store(settings)
        JobRunner(db=db, store=store, data_dir=settings.datasets_dir, worker_name="w").run(job_id)
        with db.sessions() as session:
            model_id = registry.model_ids_for_jobs(session, job_ids=[job_id])[job_id]
        db.engine.dispose()
        app = create_app(settings)
        app.state.job_queue = RecordingQueue()
        with serve(app) as base_url:
            warm = httpx.post(f"{base_url}/v1/models/{model_id}/predict", json=SAMPLE)
            assert warm.status_code == 200, warm.text  # the model is loaded, as in service
            yield Served(base_url, settings, job_id, model_id)
        app.state.db.engine.dispose()


async def timed(request: Awaitable[httpx.Response]) -> float:
    """Seconds to a 200 answer; infinite when it failed or did not come within the client's
    timeout."""
    started = time.perf_counter()
    try:
        response = await request
    except httpx.TimeoutException:
        return math.inf
    return time.perf_counter() - started if response.status_code == 200 else math.inf


async def probe_while(
    url: str, work: list[asyncio.Task[httpx.Response]], *, predict_path: str | None, limit_s: float
) -> list[float]:
    """Ask /healthz (and predict) one after another until `work` is done; each one's wait. The
    first wait over `limit_s` ends the probing (and the work): the test has its answer."""
    waits: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=limit_s + 0.5) as prober:
        try:
            while True:
                waits.append(await timed(prober.get("/healthz")))
                if predict_path is not None:
                    waits.append(await timed(prober.post(predict_path, json=SAMPLE)))
                if max(waits) > limit_s or all(task.done() for task in work):
                    return waits
        finally:
            for task in work:
                task.cancel()


def load_paths(job_id: str) -> list[str]:
    """Charts (each holding the old code's connection while it draws), logs and metrics."""
    kinds = [
        f"/v1/jobs/{job_id}/curves.png",
        f"/v1/experiments/{EXPERIMENT}/curves.png?metric=train_loss&metric=val_acc",
        f"/v1/jobs/{job_id}/logs",
        f"/v1/jobs/{job_id}/metrics",
        "/metrics",
    ]
    return [kinds[i % len(kinds)] for i in range(LOAD)]


def test_48_charts_logs_and_metrics_at_once_leave_healthz_and_predict_answering(
    served: Served,
) -> None:
    async def scenario() -> tuple[list[float], list[Any]]:
        limits = httpx.Limits(max_connections=LOAD)
        async with httpx.AsyncClient(base_url=served.url, timeout=60, limits=limits) as client:
            work = [asyncio.create_task(client.get(path)) for path in load_paths(served.job_id)]
            waits = await probe_while(
                served.url,
                work,
                predict_path=f"/v1/models/{served.model_id}/predict",
                limit_s=ANSWER_WITHIN_S,
            )
            answers = await asyncio.gather(*work, return_exceptions=True)
        return waits, answers

    waits, answers = asyncio.run(scenario())
    assert max(waits) <= ANSWER_WITHIN_S, (
        f"/healthz or predict waited {max(waits):.2f} s under {LOAD} concurrent requests"
    )
    statuses = [getattr(answer, "status_code", repr(answer)) for answer in answers]
    assert statuses == [200] * LOAD


def sweep_body(fields: int, choices: int) -> dict[str, Any]:
    space = {
        path: [value(i) for i in range(choices)] for path, value in list(FIELDS.items())[:fields]
    }
    return {
        "kind": "sweep",
        "experiment": "loop-sweeps",
        "model": {"arch": "resnet18"},
        "dataset": {"name": "digits"},
        "hyperparameters": {"epochs": 1},
        "sweep": {"space": space},
    }


def assert_not_delayed(waits: list[float]) -> None:
    """Nine probes in ten within SWEEP_DELAY_S, and none stalled."""
    ordered = sorted(waits)
    typical = ordered[(len(ordered) * 9) // 10 - 1] if len(ordered) >= 10 else ordered[0]
    assert max(waits) <= STALL_S, f"/healthz stalled {max(waits):.3f} s"
    assert typical <= SWEEP_DELAY_S, f"/healthz waited {typical:.3f} s (9 probes in 10): {waits}"


def submit_while_probing(url: str, body: dict[str, Any]) -> tuple[list[float], Any]:
    """Each /healthz wait while the body is submitted, and the answer (or why none came)."""

    async def scenario() -> tuple[list[float], Any]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            submit = asyncio.create_task(client.post("/v1/jobs", json=body))
            await asyncio.sleep(0)  # the body is on its way before the first probe
            waits = await probe_while(url, [submit], predict_path=None, limit_s=STALL_S)
            answer = (await asyncio.gather(submit, return_exceptions=True))[0]
            return waits, answer

    return asyncio.run(scenario())


def test_the_largest_sweep_body_is_refused_without_delaying_healthz(served: Served) -> None:
    waits, response = submit_while_probing(served.url, sweep_body(fields=20, choices=50))
    assert_not_delayed(waits)
    assert response.status_code == 422
    assert "D2L_SWEEP_MAX_SPACE_VALUES" in response.json()["detail"]


def test_a_sweep_at_the_bound_is_checked_without_delaying_healthz(served: Served) -> None:
    """200 values (D2L_SWEEP_MAX_SPACE_VALUES), each a resnet18 job built: seconds of CPU."""
    fields = served.settings.sweep_max_space_values // 50
    waits, response = submit_while_probing(served.url, sweep_body(fields=fields, choices=50))
    assert len(waits) >= 10, "the checks took seconds: probes all along"
    assert_not_delayed(waits)
    assert response.status_code == 202, response.text


def test_a_repeated_query_parameter_is_bounded(served: Served) -> None:
    chart = f"{served.url}/v1/experiments/{EXPERIMENT}/curves.png"
    many = httpx.get(chart, params=[("metric", f"val_m{i}") for i in range(1500)], timeout=60)
    assert many.status_code == 422
    assert "D2L_QUERY_MAX_VALUES" in many.json()["detail"]
    same = httpx.get(chart, params=[("metric", "train_loss")] * 1500, timeout=60)
    assert same.status_code == 200 and same.headers["content-type"] == "image/png"


def test_a_request_that_finds_every_connection_busy_is_told_to_retry(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_threads=1, db_pool_timeout_s=0.2)
    migrated(settings).engine.dispose()
    app = create_app(settings)
    db: Database = app.state.db
    held = [db.engine.connect() for _ in range(settings.api_threads + POOL_OVERFLOW)]
    try:
        with TestClient(app) as client:
            busy = client.get("/v1/jobs")
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
    finally:
        for connection in held:
            connection.close()
    with TestClient(app) as client:
        assert client.get("/v1/jobs").status_code == 200


def test_many_more_requests_than_threads_wait_their_turn_and_all_answer(tmp_path: Any) -> None:
    """100 reads at once on 2 threads: each gives its connection back as its handler returns,
    so none is left holding one while it queues for a thread to serialise its answer (which
    ran the pool dry: every thread waiting for a connection, every connection for a thread)."""
    settings = Settings(data_dir=tmp_path / "data", api_threads=2, db_pool_timeout_s=1.0)
    db = migrated(settings)
    with db.transaction() as session:
        job_id = add_job(session).id
    db.engine.dispose()
    app = create_app(settings)

    async def crowd(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.get(f"/v1/jobs/{job_id}") for _ in range(CROWD))
            )
        return [answer.status_code for answer in answers]

    with serve(app) as url:
        assert asyncio.run(crowd(url)) == [200] * CROWD


def test_every_handler_given_a_session_gives_it_back_as_it_returns(tmp_path: Any) -> None:
    """What keeps the test above true for every route, including routes added later."""
    app = create_app(Settings(data_dir=tmp_path / "data"))
    included = [getattr(item, "original_router", None) for item in app.routes]
    routes = [
        route
        for router in included
        if router
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    given_sessions = [
        route
        for route in routes
        if any(dependency.call is get_session for dependency in route.dependant.dependencies)
    ]
    assert given_sessions  # the check looks at something
    assert [route.path for route in given_sessions if not isinstance(route, SessionRoute)] == []

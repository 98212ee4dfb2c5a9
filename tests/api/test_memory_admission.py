"""Every job's memory is estimated at submission, data included, against the memory of the live
workers that would take it (CPU and GPU alike); what none can hold is refused with the numbers
and a size that fits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.datasets import get_dataset
from core.db import Database
from core.jobs.memory_estimate import GIB, DataFootprint, estimate
from core.settings import Settings
from core.tables import Worker, utcnow
from core.workers import register_worker
from tests.conftest import RecordingQueue
from tests.factories import job_spec, migrated

VGG_1024 = {"model": {"arch": "vgg", "input_size": 1024}, "dataset": {"name": "digits"}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The parameter budget lifted (VGG at 1024 has 2.2 B parameters, past
    D2L_MAX_MODEL_PARAMETERS), so that memory admission alone answers here."""
    return Settings(data_dir=tmp_path / "data", max_model_parameters=10**10)


def register(
    db: Database,
    hostname: str,
    *,
    cpu_bytes: int | None = None,
    gpu_bytes: int | None = None,
    jobs_at_once: int = 1,
) -> None:
    devices: list[dict[str, Any]] = []
    if gpu_bytes is not None:
        devices.append({"name": "cuda:0", "type": "cuda", "memory_bytes": gpu_bytes})
    if cpu_bytes is not None:
        devices.append(
            {"name": "cpu", "type": "cpu", "memory_bytes": cpu_bytes, "jobs_at_once": jobs_at_once}
        )
    queues = ["gpu", "cpu"] if gpu_bytes is not None else ["cpu"]
    with db.transaction() as session:
        register_worker(session, hostname=hostname, queues=queues, devices=devices)


def test_a_cpu_job_no_worker_can_hold_is_refused_with_the_numbers_and_a_size_that_fits(
    client: TestClient, sqlite_db: Database
) -> None:
    register(sqlite_db, "cpu1@test", cpu_bytes=16 * GIB)
    answer = client.post("/v1/jobs", json=VGG_1024)  # issue 16: it grew to 16 GB in 25 s
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "of memory on one CPU worker" in detail and "16.0 GiB per job (cpu1@test)" in detail
    assert "weights 8.10" in detail  # VGG's first dense layer grows with the input
    fits = re.search(r"model\.input_size \(about (\d+) fits", detail)
    assert fits is not None, detail
    smaller = {**VGG_1024, "model": {"arch": "vgg", "input_size": int(fits.group(1))}}
    assert client.post("/v1/jobs", json=smaller).status_code == 202


def test_a_worker_running_two_jobs_at_once_offers_each_half_its_memory(
    client: TestClient, sqlite_db: Database
) -> None:
    body = {
        "model": {"arch": "alexnet", "input_size": 224},
        "dataset": {"name": "digits"},
        "hyperparameters": {"batch_size": 256},
    }
    need = estimate(job_spec(**body), get_dataset("digits"), batch_size=256, kind="cpu").total
    register(sqlite_db, "cpu1@test", cpu_bytes=need * 3 // 2)
    assert client.post("/v1/jobs", json=body).status_code == 202
    register(sqlite_db, "cpu1@test", cpu_bytes=need * 3 // 2, jobs_at_once=2)
    answer = client.post("/v1/jobs", json=body)
    assert answer.status_code == 422
    assert "batch_size (about" in answer.json()["detail"]


def test_a_worker_silent_past_the_heartbeat_timeout_is_not_asked(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    register(sqlite_db, "cpu1@test", cpu_bytes=16 * GIB)  # too small for VGG at 1024
    with sqlite_db.transaction() as session:
        silent = timedelta(seconds=settings.heartbeat_timeout_s + 1)
        session.get(Worker, "cpu1@test").last_seen = utcnow() - silent  # type: ignore[union-attr]
    assert client.post("/v1/jobs", json=VGG_1024).status_code == 202  # no live worker known


@contextmanager
def service_on(data_dir: Path, **overrides: Any) -> Iterator[tuple[TestClient, Database]]:
    settings = Settings(data_dir=data_dir, **overrides)
    db = migrated(settings)
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    try:
        with TestClient(app) as client:
            yield client, db
    finally:
        db.dispose()


def test_a_dataset_resident_on_the_gpu_counts_in_its_memory(
    fashion_60k: Path, tmp_path: Path
) -> None:
    body = {"model": {"arch": "lenet"}, "dataset": {"name": "fashion_mnist"}, "device": "cuda"}
    info = get_dataset("fashion_mnist")
    raw_bytes = info.raw_bytes(fashion_60k)
    assert raw_bytes == 70_000 * 28 * 28
    streamed = DataFootprint(raw_bytes=raw_bytes, resident_max_bytes_gpu=0)
    net_alone = estimate(job_spec(**body), info, batch_size=64, data=streamed).total
    for budget, status in ((4 * GIB, 422), (0, 202)):  # resident, then streamed from disk
        data_dir = tmp_path / f"budget-{budget}"
        data_dir.mkdir()
        (data_dir / "datasets").symlink_to(fashion_60k)
        with service_on(data_dir, resident_data_max_bytes_gpu=budget) as (client, db):
            register(db, "gpu1@test", gpu_bytes=net_alone + raw_bytes // 2)
            answer = client.post("/v1/jobs", json=body)
            assert answer.status_code == status, answer.text
            if status == 422:
                assert "data (raw samples resident) 0.05" in answer.json()["detail"]

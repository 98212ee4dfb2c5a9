"""The same flow with the API and a Celery worker as separate processes on Redis + PostgreSQL."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from core.datasets.digits import load_digits_raw
from tests.e2e.processes import free_port, running, service_env, wait_for_job, wait_until_ready
from tests.services import fresh_postgres_database, fresh_redis_url

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_api_and_worker_processes_on_redis_and_postgresql(tmp_path: Path) -> None:
    with fresh_postgres_database() as database_url, fresh_redis_url() as broker_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(
            data_dir=str(tmp_path / "data"),
            database_url=database_url,
            broker_url=broker_url,
            artifact_dir=str(tmp_path / "shared-artifacts"),
            torch_threads="1",
        )
        api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
        worker_cmd = [
            "d2l-service",
            "worker",
            "--hostname",
            "w1@scaleout",
            "-Q",
            "cpu,gpu",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
        ]
        with (
            running(["d2l-service", "api", "--port", str(port)], env, api_log) as api,
            running(worker_cmd, env, worker_log),
        ):
            wait_until_ready(base, api, api_log)
            body = {
                "experiment": "scale-out",
                "model": {"arch": "lenet", "config": {"activation": "relu"}},
                "dataset": {"name": "digits"},
                "hyperparameters": {"epochs": 5, "batch_size": 32, "lr": 0.1},
            }
            submitted = httpx.post(f"{base}/v1/jobs", json=body, timeout=30)
            assert submitted.status_code == 202, submitted.text
            job = wait_for_job(
                base, submitted.json()["id"], timeout_s=600, logs=[api_log, worker_log]
            )
            assert job["status"] == "succeeded", job["error"]
            assert job["worker"] == "w1@scaleout"
            assert job["result"]["test_acc"] > 0.85

            checkpoints = httpx.get(f"{base}/v1/jobs/{job['id']}/checkpoints", timeout=30).json()
            assert (tmp_path / "shared-artifacts" / checkpoints[-1]["path"]).is_file()
            sample = load_digits_raw().inputs[:3].tolist()
            predicted = httpx.post(
                f"{base}/v1/models/{job['model_id']}/predict", json={"inputs": sample}, timeout=30
            )
            assert predicted.status_code == 200 and len(predicted.json()["predictions"]) == 3

        engine = create_engine(database_url)
        with engine.connect() as connection:  # the rows really live in PostgreSQL
            count = connection.execute(
                text("SELECT count(*) FROM metrics WHERE job_id = :id"), {"id": job["id"]}
            ).scalar_one()
        engine.dispose()
        assert count == 5 * (7 + 2 * 10)  # 7 summary metrics, 2 norms of 10 tensors, 5 epochs

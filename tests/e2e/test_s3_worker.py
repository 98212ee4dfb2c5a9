"""A real worker process with D2L_ARTIFACT_URL=s3://...: its checkpoints and its job log land in
the bucket, where an API on another machine (no shared disk) finds them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.artifacts import FsspecArtifactStore, open_artifact_store
from core.db import Database
from core.jobs import queries
from core.jobs.logs import read_job_log
from core.queue import JobQueue, make_celery
from core.settings import Settings
from migrations.upgrade import upgrade
from tests.e2e.processes import running, service_env
from tests.factories import job_spec
from tests.objectstore import moto_s3_server
from tests.services import fresh_postgres_database, fresh_redis_url

pytestmark = [pytest.mark.slow, pytest.mark.services]

TINY = {
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "hyperparameters": {"epochs": 2, "batch_size": 128, "lr": 0.1, "layer_diagnostics": False},
}


def test_a_worker_process_writes_checkpoints_and_its_log_to_the_bucket(tmp_path: Path) -> None:
    with (
        moto_s3_server() as s3,
        fresh_postgres_database() as database_url,
        fresh_redis_url() as broker_url,
    ):
        artifact_url = f"s3://{s3.new_bucket()}/d2l"
        options = json.dumps(s3.storage_options)
        # The API's machine: its own empty data directory, the same database, broker and bucket.
        api_settings = Settings(
            data_dir=tmp_path / "api-machine",
            database_url=database_url,
            broker_url=broker_url,
            artifact_url=artifact_url,
            artifact_storage_options=s3.storage_options,
        )
        upgrade(database_url)
        db = Database(database_url)
        env = service_env(
            data_dir=str(tmp_path / "worker-machine"),
            database_url=database_url,
            broker_url=broker_url,
            artifact_url=artifact_url,
            artifact_storage_options=options,
            torch_threads="1",
        )
        with db.transaction() as session:
            job_id = queries.create_job(session, spec=job_spec(**TINY), queue="cpu").id
        JobQueue(make_celery(api_settings), api_settings).enqueue(job_id, queue="cpu")
        command = ["d2l-service", "worker", "--hostname", "w1@s3", "-Q", "cpu", "-c", "1"]
        log = tmp_path / "worker.log"
        with running(command, env, log):
            deadline = time.monotonic() + 300
            while True:
                with db.sessions() as session:
                    job = queries.get_job(session, job_id=job_id)
                    if job.status in ("succeeded", "failed", "cancelled"):
                        break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            assert job.status == "succeeded", job.error
            store = open_artifact_store(api_settings)
            assert isinstance(store, FsspecArtifactStore)
            with db.sessions() as session:
                checkpoints = queries.list_checkpoints(session, job_id=job_id)
                assert checkpoints
                for checkpoint in checkpoints:
                    store.load_checkpoint(checkpoint.path, sha256=checkpoint.sha256)
            assert not (tmp_path / "worker-machine" / "artifacts" / "jobs").exists()
            deadline = time.monotonic() + 30  # the copy is made as the task returns
            while not store.list_keys(f"logs/{job_id}") and time.monotonic() < deadline:
                time.sleep(0.2)
        assert store.list_keys(f"logs/{job_id}") == [f"logs/{job_id}/w1@s3.log"]
        text = read_job_log(api_settings.artifacts, job_id, store=store)
        assert "started: mlp" in text
        db.dispose()

"""PostgreSQL goes away and comes back while a job trains: the job rides it out (its writes are
tried again), finishing with every epoch recorded once, on its first attempt."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.jobs import metrics
from core.settings import Settings
from core.tables import Job
from tests.e2e.processes import (
    enqueue_job,
    free_port,
    read_job,
    service_env,
    slow_lenet_spec,
    wait_for,
    worker,
)
from tests.factories import migrated
from tests.services import private_postgres

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_job_survives_a_postgres_restart_mid_training(tmp_path: Path) -> None:
    with private_postgres(free_port()) as postgres:
        settings = Settings(data_dir=tmp_path / "data", database_url=postgres.url, torch_threads=1)
        db = migrated(settings)
        env = service_env(
            data_dir=str(settings.data_dir), database_url=postgres.url, torch_threads="1"
        )
        job_id = enqueue_job(db, settings, slow_lenet_spec(epochs=4))

        def job() -> Job:
            return read_job(db, job_id)

        log = tmp_path / "worker.log"
        with worker("w1", env, log):
            wait_for(lambda: job().epoch >= 1, 300, [log])
            db.dispose()
            postgres.stop()
            time.sleep(4)  # longer than an epoch: its end-of-epoch write meets the outage
            postgres.start()
            wait_for(lambda: job().status != "running", 300, [log])
        finished = job()
        assert finished.status == "succeeded", (finished.error, log.read_text()[-3000:])
        assert finished.attempts == 1
        with db.sessions() as session:
            losses = metrics.list_metrics(session, job_id=job_id, name="loss")
            assert sorted(m.epoch for m in losses if m.split == "train") == [1, 2, 3, 4]
        assert "trying again" in log.read_text()  # a write did meet the outage
        db.dispose()

"""Warm shutdown: SIGTERM to a worker stops its job at the next step and puts it back in the
queue (not counted as a failed attempt); the next worker resumes it from its checkpoint."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.jobs import metrics
from core.settings import Settings
from core.tables import Job
from tests.e2e.processes import (
    enqueue_job,
    read_job,
    service_env,
    slow_lenet_spec,
    wait_for,
    worker,
)
from tests.factories import migrated

pytestmark = pytest.mark.slow


def test_sigterm_sends_the_running_job_back_to_the_queue_and_it_resumes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=3, torch_threads=1)
    db = migrated(settings)
    env = service_env(data_dir=str(settings.data_dir), heartbeat_timeout_s="3", torch_threads="1")
    job_id = enqueue_job(db, settings, slow_lenet_spec(epochs=3))

    def job() -> Job:
        return read_job(db, job_id)

    first_log, second_log = tmp_path / "w1.log", tmp_path / "w2.log"
    with worker("w1", env, first_log) as first:
        wait_for(lambda: job().epoch >= 1, 300, [first_log])
        asked = time.monotonic()
        first.send_signal(signal.SIGTERM)  # the main process only, as `docker stop` does
        try:
            first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(first_log.read_text()[-3000:]) from None
        stopped_in_s = time.monotonic() - asked
    stepped_aside = job()
    assert stepped_aside.status == "queued", first_log.read_text()[-3000:]
    assert stepped_aside.attempts == 0  # a shutdown is not a failed attempt
    assert not stepped_aside.requeue_requested
    assert stopped_in_s < 30  # well inside a container's stop grace period
    assert "back in the cpu queue" in first_log.read_text()

    with worker("w2", env, second_log):
        wait_for(lambda: job().status == "succeeded", 300, [first_log, second_log])
    finished = job()
    assert (finished.worker, finished.attempts) == ("w2@crash", 1)
    assert finished.result is not None
    assert finished.result["resumed_after_epoch"] == stepped_aside.epoch
    with db.sessions() as session:
        losses = metrics.list_metrics(session, job_id=job_id, name="loss")
        assert sorted(m.epoch for m in losses if m.split == "train") == [1, 2, 3]
    db.dispose()

"""Fault injection: SIGKILL a whole worker mid-epoch; another worker finishes the job as if nothing
had happened (the reaper re-queues it, the runner resumes from the last checkpoint)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from core.jobs import metrics, queries
from core.settings import Settings
from tests.e2e.processes import (
    enqueue_job,
    read_job,
    service_env,
    slow_lenet_spec,
    wait_for,
    worker,
)
from tests.factories import migrated
from worker.engine import fit

pytestmark = pytest.mark.slow


def test_a_job_whose_worker_is_killed_mid_epoch_resumes_and_ends_as_if_uninterrupted(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=3, torch_threads=1)
    db = migrated(settings)
    env = service_env(data_dir=str(settings.data_dir), heartbeat_timeout_s="3", torch_threads="1")
    spec = slow_lenet_spec()
    job_id = enqueue_job(db, settings, spec)

    def epoch() -> int:
        return read_job(db, job_id).epoch

    first_log, second_log = tmp_path / "w1.log", tmp_path / "w2.log"
    with worker("w1", env, first_log) as first:
        wait_for(lambda: epoch() >= 2, 300, [first_log])
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, no warning
        first.wait()
    killed_after = epoch()
    assert killed_after == 2  # epoch 3 was under way

    with worker("w2", env, second_log):

        def finished() -> bool:
            with db.sessions() as session:
                return queries.get_job(session, job_id=job_id).status != "running" and epoch() == 5

        wait_for(finished, 300, [first_log, second_log])
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        assert (job.worker, job.attempts) == ("w2@crash", 2)
        # an epoch shows as done once its checkpoint is durable: the resume starts right there
        assert job.result is not None and job.result["resumed_after_epoch"] == killed_after
        train_losses = [m for m in metrics.list_metrics(session, job_id=job_id, name="loss")]
        assert sorted(m.epoch for m in train_losses if m.split == "train") == [1, 2, 3, 4, 5]
    assert "re-queued" in second_log.read_text()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers trained
    try:
        expected = fit(spec, device=torch.device("cpu"), data_dir=settings.datasets_dir)
    finally:
        torch.set_num_threads(threads)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "steps"):
        assert job.result[key] == pytest.approx(expected[key], rel=1e-6), key
    db.dispose()

"""A dataset over the worker's resident budget streams from disk through DataLoader processes
started by the Celery pool child itself (a daemonic process, which multiprocessing would refuse),
trains exactly as resident data do with the same seed, and leaves no loader process behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import workers
from core.settings import Settings
from tests.e2e.processes import enqueue_job, read_job, service_env, wait_for, worker
from tests.factories import job_spec, migrated
from worker.engine import fit

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_streamed_job_in_a_real_worker_trains_as_a_resident_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", torch_threads=1)
    db = migrated(settings)
    env = service_env(
        data_dir=str(settings.data_dir),
        torch_threads="1",
        resident_data_max_bytes_cpu="0",  # nothing may stay resident: every batch is read
        data_loader_workers="2",
    )
    spec = job_spec(
        model={"arch": "lenet", "config": {"activation": "relu"}},
        hyperparameters={"epochs": 2, "batch_size": 64, "lr": 0.1, "seed": 5},
    )
    job_id = enqueue_job(db, settings, spec)
    log = tmp_path / "worker.log"
    with worker("streams", env, log) as process:
        wait_for(lambda: read_job(db, job_id).status not in ("queued", "running"), 300, [log])
        job = read_job(db, job_id)
        (pool_child,) = children(process.pid)
        assert children(pool_child) == []  # the loader processes are gone with their epoch
    with db.sessions() as session:  # what the submission check weighs jobs against
        (registered,) = workers.list_workers(session)
        cpu = next(device for device in registered.devices if device["type"] == "cpu")
        assert cpu["jobs_at_once"] == 1 and cpu["memory_bytes"] > 2**30
    assert job.status == "succeeded", job.error
    assert job.result is not None
    assert job.result["data"] == {
        "mode": "streamed",
        "raw_bytes": 1797 * 8 * 8 * 4,
        "raw_dtype": "float32",
        "loader_workers": 2,
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker trained
    try:
        resident = fit(spec, device=torch.device("cpu"), data_dir=settings.datasets_dir)
    finally:
        torch.set_num_threads(threads)
    assert resident["data"]["mode"] == "resident"
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "steps"):
        assert job.result[key] == pytest.approx(resident[key], rel=1e-6), key
    db.dispose()

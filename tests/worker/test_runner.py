"""The runner: what a worker does with a job id, against a real (SQLite) database."""

import pytest
import torch

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.jobs.metrics import list_metrics
from core.registry import queries as registry
from tests.factories import add_job
from worker import job_training
from worker.runner import JobRunner


def make_job(db: Database, **overrides) -> str:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return add_job(session, **overrides).id


def test_a_job_records_metrics_checkpoints_and_a_model(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    job_id = make_job(
        sqlite_db, hyperparameters={"epochs": 4, "batch_size": 64, "keep_checkpoints": 2}
    )
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        assert (job.worker, job.device, job.epoch) == ("w1", "cpu", 4)
        assert job.started_at is not None and job.finished_at is not None
        assert 0.0 <= job.result["test_acc"] <= 1.0
        metrics = list_metrics(session, job_id=job_id)
        summary = [m for m in metrics if m.split != "layers"]
        assert len(summary) == 4 * 7  # one row per epoch per (split, name)
        assert len(metrics) - len(summary) == 4 * 2 * 10  # grad and weight norm of 10 tensors
        checkpoints = queries.list_checkpoints(session, job_id=job_id)
        assert [c.epoch for c in checkpoints] == [3, 4]
        model_ids = registry.model_ids_for_jobs(session, job_ids=[job_id])
        model = registry.get_model_row(session, model_id=model_ids[job_id])
        assert model.checkpoint.epoch == 4
    files = sorted(p.name for p in (store.root / "jobs" / job_id).iterdir())
    assert files == ["epoch-0003.pt", "epoch-0004.pt"]  # pruned files are gone with their rows
    payload = store.load_checkpoint(checkpoints[-1].path, sha256=checkpoints[-1].sha256)
    assert payload["epoch"] == 4


def test_a_finished_job_delivered_again_is_left_alone(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    job_id = make_job(sqlite_db)
    with sqlite_db.transaction() as session:
        queries.finish_job(session, job=queries.get_job(session, job_id=job_id), status="cancelled")
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        assert queries.get_job(session, job_id=job_id).status == "cancelled"
        assert not list_metrics(session, job_id=job_id)


def test_a_gpu_job_on_a_worker_without_that_gpu_fails_saying_so(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    job_id = make_job(sqlite_db, device="cuda:99")
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "failed"
        assert "cuda:99" in job.error and "'auto' or 'cpu'" in job.error


def test_an_error_in_training_fails_the_job_with_its_message(
    sqlite_db: Database, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("loss is nan at epoch 3")

    monkeypatch.setattr(job_training, "fit", explode)
    job_id = make_job(sqlite_db)
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.error) == ("failed", "RuntimeError: loss is nan at epoch 3")
        assert job.finished_at is not None


def test_running_out_of_gpu_memory_fails_with_the_batch_size_and_what_to_try(
    sqlite_db: Database, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(job_training, "fit", out_of_memory)
    job_id = make_job(sqlite_db, hyperparameters={"batch_size": 256})
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "failed"
        assert "batch_size 256" in job.error and "batch_size 128" in job.error
        assert "bf16" in job.error

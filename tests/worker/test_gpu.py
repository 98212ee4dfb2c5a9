"""GPU code paths (the course's try_gpu chapter); skipped, with the reason, on a machine without one."""

from pathlib import Path

import pytest
import torch

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import metrics, queries
from tests.factories import add_job, job_spec
from worker import devices, distributed
from worker.batches import DataPlan
from worker.engine import fit
from worker.runner import JobRunner

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)


def test_auto_picks_the_first_gpu_and_the_inventory_lists_it() -> None:
    assert devices.resolve_device("auto") == torch.device("cuda:0")
    assert devices.try_all_gpus()[0] == torch.device("cuda:0")
    gpu = devices.inventory()[0]
    assert gpu["type"] == "cuda" and int(gpu["memory_bytes"]) > 0  # type: ignore[call-overload]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_the_gpu_in_every_precision(precision: str) -> None:
    spec = job_spec(
        model={"arch": "lenet", "config": {"activation": "relu"}},
        hyperparameters={
            "epochs": 3,
            "batch_size": 64,
            "lr": 0.1,
            "precision": precision,
            "channels_last": True,
        },
        device="cuda:0",
    )
    result = fit(spec, device=torch.device("cuda:0"), data_dir=Path("/nonexistent"))
    assert result["test_acc"] > 0.8


def test_a_missing_gpu_index_is_refused() -> None:
    with pytest.raises(devices.DeviceUnavailableError, match="cuda:99"):
        devices.resolve_device("cuda:99")


def test_device_all_trains_with_distributed_data_parallel_over_nccl(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    """The launcher's NCCL path on every GPU here (one GPU is a world of one)."""
    with sqlite_db.transaction() as session:
        job = add_job(
            session,
            model={"arch": "lenet", "config": {"activation": "relu"}},
            hyperparameters={"epochs": 3, "batch_size": 64, "lr": 0.1},
            device="all",
        )
        queries.mark_running(session, job=job, worker="test", device="cuda")
    result = distributed.launch(
        job.id,
        processes=torch.cuda.device_count(),
        db=sqlite_db,
        store=store,
        data_dir=store.root,
    )
    assert result["test_acc"] > 0.8
    with sqlite_db.sessions() as session:
        epochs = [
            m.epoch
            for m in metrics.list_metrics(session, job_id=job.id)
            if (m.split, m.name) == ("train", "loss")
        ]
        assert epochs == [1, 2, 3]


def test_a_job_on_device_all_records_the_gpus_it_used(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session, device="all").id
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        assert job.device.startswith("cuda:0") and torch.cuda.get_device_name(0) in job.device


def test_streamed_data_reach_the_gpu_through_pinned_memory_and_train_as_resident_data() -> None:
    spec = job_spec(
        model={"arch": "lenet", "config": {"activation": "relu"}},
        hyperparameters={"epochs": 2, "batch_size": 64, "lr": 0.1, "seed": 1},
        device="cuda:0",
    )
    gpu, nowhere = torch.device("cuda:0"), Path("/nonexistent")
    resident = fit(spec, device=gpu, data_dir=nowhere)
    streamed = fit(
        spec,
        device=gpu,
        data_dir=nowhere,
        plan=DataPlan(resident_max_bytes_gpu=0, loader_workers=2),
    )
    assert (resident["data"]["mode"], streamed["data"]["mode"]) == ("resident", "streamed")
    assert streamed["test_acc"] == pytest.approx(resident["test_acc"], abs=0.02)  # GPU kernels vary

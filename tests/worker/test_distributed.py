"""Device `all`: DistributedDataParallel through PyTorch's launcher, tried here with CPU ranks.

NCCL needs GPUs (tests/worker/test_gpu.py runs that path where there are some); the gloo backend
runs the same code with CPU processes, so the data-parallel arithmetic is checked everywhere.
"""

import pytest
import torch

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import metrics, queries
from tests.factories import add_job
from worker import distributed
from worker.runner import JobRunner
from worker.training_loop import epoch_order, shard_batches
from worker.training_state import Shard


def mlp_job(db: Database, *, claimed: bool = True, **hyperparameters: object) -> str:
    """A small MLP job; `claimed`: marked running, as the runner does before it launches."""
    with db.transaction() as session:
        job = add_job(
            session,
            model={"arch": "mlp", "config": {"hidden_sizes": [64]}},
            hyperparameters={"epochs": 2, "batch_size": 64, "lr": 0.2, **hyperparameters},
            device="all",
        )
        if claimed:
            queries.mark_running(session, job=job, worker="test", device="cpu")
        return job.id


def launch_on_two_cpu_ranks(job_id: str, db: Database, store: ArtifactStore) -> dict:
    return distributed.launch(
        job_id, processes=2, db=db, store=store, data_dir=store.root, backend="gloo"
    )


@pytest.mark.slow  # starts real processes through torch.distributed.run
def test_two_ranks_train_exactly_as_one_process(sqlite_db: Database, store: ArtifactStore) -> None:
    single_id, ddp_id = mlp_job(sqlite_db, claimed=False), mlp_job(sqlite_db)
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(single_id)
    ddp = launch_on_two_cpu_ranks(ddp_id, sqlite_db, store)

    with sqlite_db.sessions() as session:
        single = queries.get_job(session, job_id=single_id).result
        assert single is not None
        assert single["splits"]["train"] % 2 == 0  # no padding: both runs see the same examples
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert ddp[key] == pytest.approx(single[key], abs=1e-4), key
        rows = metrics.list_metrics(session, job_id=ddp_id)
        losses = [(m.epoch, m.value) for m in rows if (m.split, m.name) == ("train", "loss")]
        assert [epoch for epoch, _ in losses] == [1, 2]  # rank 0 alone reports, once an epoch
        assert [c.epoch for c in queries.list_checkpoints(session, job_id=ddp_id)] == [1, 2]


@pytest.mark.slow
def test_a_diverging_distributed_job_reports_the_nan_message(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    job_id = mlp_job(sqlite_db, lr=1e6, epochs=1)
    with pytest.raises(distributed.DistributedJobError, match="NaN or infinite at epoch 1"):
        launch_on_two_cpu_ranks(job_id, sqlite_db, store)


def test_device_all_on_a_worker_without_gpus_trains_on_the_cpu(
    sqlite_db: Database, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with sqlite_db.transaction() as session:
        job_id = add_job(session, device="all").id
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.device) == ("succeeded", "cpu"), job.error


@pytest.mark.parametrize(("size", "batch_size", "world"), [(10, 4, 3), (1257, 64, 2), (7, 16, 4)])
def test_ranks_share_every_step_equally_and_cover_the_data(
    size: int, batch_size: int, world: int
) -> None:
    per_rank = []
    for rank in range(world):
        shard = Shard(rank=rank, world=world)
        order, batch = epoch_order(size, batch_size, torch.Generator().manual_seed(0), shard)
        per_rank.append(shard_batches(order, batch, shard))
    steps = {len(batches) for batches in per_rank}
    assert len(steps) == 1  # every rank takes the same number of steps (no rank waits forever)
    for step in range(steps.pop()):
        shares = [batches[step] for batches in per_rank]
        assert len({len(share) for share in shares}) == 1  # equal shares: DDP's mean is exact
    seen = torch.cat([torch.cat(batches) for batches in per_rank])
    assert set(seen.tolist()) == set(range(size))
    assert len(seen) - size < world  # padding only to the next multiple of the world size

"""k-fold cross-validation and model selection (ch. 3.6), through the engine and the runner."""

from pathlib import Path

import pytest
import torch

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.jobs.kinds import get_kind
from core.jobs.metrics import list_metrics
from core.jobs.schemas import JobCreate
from core.registry import queries as registry
from tests.factories import add_job
from worker.kfold import cross_validate, fold_indices
from worker.runner import JobRunner
from worker.training_state import Callbacks, EpochReport

BASE = {
    "kind": "kfold",
    "model": {"arch": "lenet", "config": {"activation": "relu"}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 2, "batch_size": 64, "lr": 0.1},
}


@pytest.mark.parametrize(("count", "k"), [(10, 2), (1438, 5), (101, 20)])
def test_folds_are_disjoint_and_cover_every_example(count: int, k: int) -> None:
    folds = fold_indices(count, k=k, seed=3)
    assert len(folds) == k
    everything = torch.cat(folds)
    assert sorted(everything.tolist()) == list(range(count))  # disjoint and covering
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert all(torch.equal(a, b) for a, b in zip(folds, fold_indices(count, k=k, seed=3)))


def test_model_selection_picks_the_candidate_that_generalises_and_retrains_it() -> None:
    spec = JobCreate.model_validate(
        {
            **BASE,
            "kfold": {
                "k": 3,
                "candidates": [
                    {"label": "frozen", "hyperparameters": {"lr": 1e-6}},
                    {"label": "learns", "hyperparameters": {"lr": 0.1}},
                ],
            },
        }
    )
    reports: list[EpochReport] = []
    result = cross_validate(
        spec,
        device=torch.device("cpu"),
        data_dir=Path("/x"),
        callbacks=Callbacks(on_epoch=reports.append),
    )
    assert result["winner"] == "learns" and result["k"] == 3
    by_label = {c["label"]: c for c in result["candidates"]}
    assert len(by_label["learns"]["folds"]) == 3
    assert by_label["learns"]["mean_val_acc"] > by_label["frozen"]["mean_val_acc"]
    assert by_label["learns"]["std_val_acc"] >= 0
    assert result["test_acc"] > 0.8  # the winner retrained on all training data, then tested
    assert sum(result["fold_sizes"]) == result["splits"]["train"] + result["splits"]["val"]
    # per-fold curves tagged with candidate and fold, then the final run's plain train metrics
    splits = {split for r in reports for (split, _) in r.metrics}
    assert {"c0/f1/train", "c0/f3/val", "c1/f2/val", "train"} <= splits
    assert [r.progress for r in reports] == list(range(1, 2 * 3 * 2 + 2 + 1))
    assert get_kind("kfold").planned_epochs(spec) == len(reports)


def test_a_kfold_job_runs_through_the_runner_and_yields_a_model(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session, **{**BASE, "kfold": {"k": 2}}).id
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        assert (job.epoch, job.epochs) == (2 * 2 + 2, 6)
        assert job.result["winner"] == "base"
        val_rows = [
            m for m in list_metrics(session, job_id=job_id, name="acc") if m.split.endswith("/val")
        ]
        assert {m.split for m in val_rows} == {"c0/f1/val", "c0/f2/val"}
        assert registry.model_ids_for_jobs(session, job_ids=[job_id])


def test_kfold_settings_are_validated_at_submission() -> None:
    with pytest.raises(ValueError, match=r"k\n.*greater than or equal to 2"):
        JobCreate.model_validate({**BASE, "kfold": {"k": 1}})
    with pytest.raises(ValueError, match=r"candidate 'bad': hyperparameters\.lr"):
        JobCreate.model_validate(
            {**BASE, "kfold": {"candidates": [{"label": "bad", "hyperparameters": {"lr": -1}}]}}
        )
    with pytest.raises(ValueError, match="unique"):
        JobCreate.model_validate(
            {**BASE, "kfold": {"candidates": [{"label": "a"}, {"label": "a"}]}}
        )
    with pytest.raises(ValueError, match="need kind 'kfold'"):
        JobCreate.model_validate({**BASE, "kind": "train", "kfold": {"k": 3}})

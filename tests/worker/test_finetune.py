"""Fine-tuning (ch. 14.2) through the runner: transfer from digits 0-6 to a few examples of 7-9."""

from collections.abc import Iterator

import pytest
import torch

from core.artifacts import ArtifactStore
from core.datasets import list_datasets
from core.datasets.digits import load_digits_raw
from core.datasets.info import DatasetInfo, RawData
from core.datasets.registry import register_dataset
from core.db import Database
from core.jobs import queries
from core.registry import queries as registry
from core.tables import new_id
from tests.factories import add_job
from worker.runner import JobRunner

RELU_LENET = {"arch": "lenet", "config": {"activation": "relu"}}
CONV_PARAMETERS = ["0.bias", "0.weight", "3.bias", "3.weight"]


def digits_subset(name: str, classes: list[int], per_class: int | None) -> None:
    """Register a dataset of some digit classes (relabelled 0..n-1), optionally only a few each."""
    if name in list_datasets():
        return

    def load(_root: object) -> RawData:
        raw = load_digits_raw()
        picked = []
        for label in classes:
            indices = (raw.targets == label).nonzero().flatten()
            picked.append(indices[:per_class] if per_class else indices)
        index = torch.cat(picked)
        relabel = torch.tensor([classes.index(int(t)) for t in raw.targets[index]])
        return RawData(inputs=raw.inputs[index], targets=relabel)

    register_dataset(
        DatasetInfo(
            name=name,
            description=f"digits {classes}",
            raw_shape=(8, 8),
            in_channels=1,
            class_names=tuple(str(c) for c in classes),
            raw_scale=1 / 16,
            loader=load,
        )
    )


@pytest.fixture(scope="module", autouse=True)
def datasets() -> None:
    digits_subset("digits_0to6", list(range(7)), None)
    digits_subset("digits_7to9_few", [7, 8, 9], 24)  # 72 images, 36 to learn from


def run(db: Database, store: ArtifactStore, **spec) -> dict:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        job_id = add_job(session, **spec).id
    JobRunner(db=db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        model = registry.get_model_row(
            session, model_id=registry.model_ids_for_jobs(session, job_ids=[job_id])[job_id]
        )
        weights = store.load_checkpoint(model.checkpoint.path, sha256=model.checkpoint.sha256)[
            "state_dict"
        ]
        return {"id": job_id, "result": job.result, "state_dict": weights}


@pytest.fixture
def pretrained(sqlite_db: Database, store: ArtifactStore) -> Iterator[dict]:
    yield run(
        sqlite_db,
        store,
        model=RELU_LENET,
        dataset={"name": "digits_0to6"},
        hyperparameters={"epochs": 6, "batch_size": 32, "lr": 0.1},
    )


FEW_SHOT = {
    "dataset": {"name": "digits_7to9_few", "test_fraction": 0.5, "val_fraction": 0.0},
    "hyperparameters": {"epochs": 2, "batch_size": 8, "lr": 0.1},
}


def test_fine_tuning_keeps_frozen_layers_replaces_the_head_and_beats_scratch(
    sqlite_db: Database, store: ArtifactStore, pretrained: dict
) -> None:
    tuned = run(
        sqlite_db,
        store,
        kind="finetune",
        model=RELU_LENET,
        **FEW_SHOT,
        finetune={
            "source": {"job_id": pretrained["id"]},
            "freeze": "features",
            "backbone_lr_mult": 0.1,
        },
    )
    scratch = run(sqlite_db, store, model=RELU_LENET, **FEW_SHOT)
    tuned_acc, scratch_acc = tuned["result"]["test_acc"], scratch["result"]["test_acc"]
    assert tuned_acc > scratch_acc + 0.1, (tuned_acc, scratch_acc)
    info = tuned["result"]["finetune"]
    assert info["head_replaced"] is True and info["head"] == ["11.weight", "11.bias"]
    assert info["frozen"] == CONV_PARAMETERS and f"job {pretrained['id']}" == info["source"]
    for name in CONV_PARAMETERS:  # frozen: the very same bytes after training
        assert torch.equal(tuned["state_dict"][name], pretrained["state_dict"][name])
    assert not torch.equal(tuned["state_dict"]["7.weight"], pretrained["state_dict"]["7.weight"])
    assert tuned["state_dict"]["11.weight"].shape == (3, 84)


def test_prefix_freezing_freezes_exactly_the_named_parameters(
    sqlite_db: Database, store: ArtifactStore, pretrained: dict
) -> None:
    tuned = run(
        sqlite_db,
        store,
        kind="finetune",
        model=RELU_LENET,
        **FEW_SHOT,
        finetune={"source": {"job_id": pretrained["id"]}, "freeze": ["0.", "7.weight"]},
    )
    assert tuned["result"]["finetune"]["frozen"] == ["0.bias", "0.weight", "7.weight"]
    for name, tensor in tuned["state_dict"].items():
        unchanged = (
            torch.equal(tensor, pretrained["state_dict"][name])
            if tensor.shape == pretrained["state_dict"][name].shape
            else False
        )
        assert unchanged == (name in {"0.bias", "0.weight", "7.weight"}), name


def test_fine_tuning_from_an_uploaded_state_dict(
    sqlite_db: Database, store: ArtifactStore, pretrained: dict
) -> None:
    weights_id = new_id()
    stored = store.save_payload(
        f"uploads/{weights_id}.pt", {"state_dict": pretrained["state_dict"]}
    )
    with sqlite_db.transaction() as session:
        registry.add_uploaded_weights(
            session,
            filename="lenet.pt",
            arch="lenet",
            config={"activation": "relu"},
            in_channels=1,
            num_classes=7,
            input_size=28,
            stored=stored,
            weights_id=weights_id,
        )
    tuned = run(
        sqlite_db,
        store,
        kind="finetune",
        model=RELU_LENET,
        **FEW_SHOT,
        finetune={"source": {"checkpoint_id": weights_id}, "freeze": "all_but_head"},
    )
    info = tuned["result"]["finetune"]
    assert info["source"] == f"uploaded checkpoint {weights_id}"
    assert info["trainable_parameters"] == 84 * 3 + 3  # only the new head learns

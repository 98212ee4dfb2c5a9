"""The training engine called directly, as the worker calls it."""

from pathlib import Path

import torch

import models
from tests.factories import job_spec
from worker.engine import fit
from worker.training_state import Callbacks, EpochReport

CPU = torch.device("cpu")


def run(spec, reports=None, checkpoints=None):  # type: ignore[no-untyped-def]
    """fit on the CPU, collecting epoch reports and checkpoint payloads where asked."""
    callbacks = Callbacks()
    if reports is not None:
        callbacks.on_epoch = reports.append
    if checkpoints is not None:
        callbacks.on_checkpoint = lambda epoch, payload: checkpoints.append((epoch, payload))
    return fit(spec, device=CPU, data_dir=Path("/nonexistent"), callbacks=callbacks)


def test_training_lowers_the_loss_and_reports_every_epoch() -> None:
    spec = job_spec(
        model={"arch": "lenet", "config": {"activation": "relu"}},
        hyperparameters={"epochs": 3, "batch_size": 32, "lr": 0.1},
    )
    reports: list[EpochReport] = []
    result = run(spec, reports)
    assert [r.epoch for r in reports] == [1, 2, 3]
    summary_keys = {key for key in reports[0].metrics if key[0] != "layers"}
    assert summary_keys == {
        ("train", "loss"),
        ("train", "acc"),
        ("train", "examples_per_sec"),
        ("train", "lr"),
        ("train", "grad_norm"),
        ("val", "loss"),
        ("val", "acc"),
    }
    parameter_names = [
        name
        for name, _ in models.get_model("lenet", in_channels=1, num_classes=10).named_parameters()
    ]
    layer_keys = {key for key in reports[0].metrics if key[0] == "layers"}
    assert layer_keys == {
        ("layers", f"{kind}:{name}")
        for name in parameter_names
        for kind in ("grad_norm", "weight_norm")
    }
    assert reports[-1].metrics[("train", "loss")] < reports[0].metrics[("train", "loss")]
    steps_per_epoch = -(-result["splits"]["train"] // 32)
    assert reports[-1].step == result["steps"] == 3 * steps_per_epoch
    assert result["test_acc"] > 0.8
    assert result["train_error"] == 1 - result["train_acc"]


def test_the_same_seed_reproduces_the_metrics_exactly() -> None:
    spec = job_spec(hyperparameters={"epochs": 2, "batch_size": 64, "seed": 7})
    first: list[EpochReport] = []
    second: list[EpochReport] = []
    run(spec, first)
    run(spec, second)

    def strip(reports: list[EpochReport]) -> list[dict]:
        return [{k: v for k, v in r.metrics.items() if k[1] != "examples_per_sec"} for r in reports]

    assert strip(first) == strip(second)


def test_checkpoints_carry_what_rebuilds_and_resumes_the_net() -> None:
    checkpoints: list = []
    run(job_spec(hyperparameters={"epochs": 2, "batch_size": 64}), checkpoints=checkpoints)
    assert [epoch for epoch, _ in checkpoints] == [1, 2]
    payload = checkpoints[-1][1]
    assert payload["arch"] == "lenet" and payload["epoch"] == 2
    assert payload["num_classes"] == 10 and payload["input_size"] == 28
    assert payload["class_names"] == [str(d) for d in range(10)]
    assert payload["preprocessing"]["raw_shape"] == [8, 8]
    assert "0.weight" in payload["state_dict"] and payload["optimizer"]["param_groups"]


def test_lenet_on_digits_reaches_95_percent_test_accuracy_by_default() -> None:
    spec = job_spec(hyperparameters={})  # every hyperparameter at its default
    assert spec.hyperparameters.epochs == 30
    result = run(spec)
    assert result["test_acc"] >= 0.95, result

"""Each training knob changes what it should, seen in the metrics a user reads."""

from pathlib import Path

import pytest
import torch

from core.jobs.hyperparameters import LRSchedule
from tests.factories import job_spec
from worker.diagnostics import NonFiniteError
from worker.engine import fit
from worker.optim import lr_factor
from worker.training_state import Callbacks, EpochReport

CPU = torch.device("cpu")
RELU_LENET = {"arch": "lenet", "config": {"activation": "relu"}}


def train(hyperparameters: dict, model: dict | None = None) -> tuple[dict, list[EpochReport]]:
    reports: list[EpochReport] = []
    spec = job_spec(
        model=model or RELU_LENET, hyperparameters={"batch_size": 64, "lr": 0.1, **hyperparameters}
    )
    result = fit(
        spec,
        device=CPU,
        data_dir=Path("/nonexistent"),
        callbacks=Callbacks(on_epoch=reports.append),
    )
    return result, reports


def weight_norm(report: EpochReport) -> float:
    squares = [
        v**2 for (split, name), v in report.metrics.items() if name.startswith("weight_norm:")
    ]
    return sum(squares) ** 0.5


def test_weight_decay_shrinks_the_weights() -> None:
    _, plain = train({"epochs": 3})
    _, decayed = train({"epochs": 3, "weight_decay": 0.05})
    assert weight_norm(decayed[-1]) < 0.9 * weight_norm(plain[-1])


def test_clipping_bounds_the_recorded_gradient_norm() -> None:
    _, unclipped = train({"epochs": 2, "lr": 0.05})
    _, clipped = train({"epochs": 2, "lr": 0.05, "grad_clip_norm": 0.01})
    assert max(r.metrics[("train", "grad_norm")] for r in unclipped) > 0.01
    assert all(r.metrics[("train", "grad_norm")] <= 0.01 * (1 + 1e-4) for r in clipped)


def test_an_exploding_run_fails_saying_where_and_what_to_try() -> None:
    with pytest.raises(NonFiniteError, match=r"epoch 1, step \d+.*lower lr.*clipping"):
        train({"epochs": 3, "lr": 1e6})


def test_the_step_schedule_decays_the_recorded_lr_each_step_size() -> None:
    schedule = {"name": "step", "step_size": 1, "gamma": 0.5}
    _, reports = train({"epochs": 3, "lr": 0.2, "lr_schedule": schedule})
    assert [r.metrics[("train", "lr")] for r in reports] == pytest.approx([0.1, 0.05, 0.025])


def test_cosine_reaches_its_floor_and_warmup_ramps_up() -> None:
    cosine = LRSchedule(name="cosine", warmup_epochs=1, min_lr_ratio=0.1)
    factor = lr_factor(cosine, steps_per_epoch=10, total_steps=50)
    ramp = [factor(step) for step in range(10)]
    assert ramp == sorted(ramp) and ramp[0] < 0.2 and factor(10) == pytest.approx(1.0)
    assert factor(50) == pytest.approx(0.1)
    _, reports = train({"epochs": 2, "lr_schedule": {"name": "cosine"}})
    assert reports[-1].metrics[("train", "lr")] == pytest.approx(0.0, abs=1e-9)


def test_onecycle_rises_then_anneals() -> None:
    _, reports = train(
        {"epochs": 4, "lr": 0.2, "lr_schedule": {"name": "onecycle", "pct_start": 0.5}}
    )
    lrs = [r.metrics[("train", "lr")] for r in reports]
    assert lrs[1] == pytest.approx(0.2, rel=0.05) and lrs[-1] < 0.001


def test_early_stopping_ends_the_run_when_validation_stops_improving() -> None:
    stopping = {"metric": "val_loss", "patience": 2, "min_delta": 10.0}  # nothing improves by 10
    result, reports = train({"epochs": 10, "early_stopping": stopping})
    assert len(reports) == 3 and result["epochs"] == 3
    assert result["stopped_early"] is True and result["best_epoch"] == 1


@pytest.mark.parametrize(
    "optimizer",
    [
        {"optimizer": "sgd", "momentum": 0.9, "lr": 0.02},
        {"optimizer": "adam", "lr": 0.002},
        {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.01},
    ],
)
def test_every_optimizer_trains(optimizer: dict) -> None:
    _, reports = train({"epochs": 2, **optimizer})
    assert reports[-1].metrics[("train", "loss")] < 0.7 * reports[0].metrics[("train", "loss")] or (
        reports[-1].metrics[("val", "acc")] > 0.9
    )


def test_label_smoothing_keeps_the_training_loss_above_its_floor() -> None:
    _, sharp = train({"epochs": 3})
    _, smooth = train({"epochs": 3, "label_smoothing": 0.3})
    assert smooth[-1].metrics[("train", "loss")] > sharp[-1].metrics[("train", "loss")] + 0.3


def test_the_dropout_override_reaches_the_net_and_its_checkpoint() -> None:
    payloads: list[dict] = []
    spec = job_spec(
        model={"arch": "mlp"},
        hyperparameters={"epochs": 1, "batch_size": 64, "lr": 0.1, "dropout": 0.5},
    )
    fit(
        spec,
        device=CPU,
        data_dir=Path("/x"),
        callbacks=Callbacks(on_checkpoint=lambda e, p: payloads.append(p)),
    )
    assert payloads[0]["config"] == {"dropout": 0.5}


def test_bf16_autocast_trains_on_the_cpu_and_fp16_is_refused_there() -> None:
    full, _ = train({"epochs": 3})
    half, _ = train({"epochs": 3, "precision": "bf16"})
    assert half["test_acc"] == pytest.approx(full["test_acc"], abs=0.1)
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        train({"epochs": 1, "precision": "fp16"})


def test_vanishing_gradients_of_a_deep_sigmoid_mlp_are_flagged() -> None:
    deep = {"arch": "mlp", "config": {"hidden_sizes": [64] * 10, "activation": "sigmoid"}}
    result, _ = train({"epochs": 1, "init": "normal", "init_std": 0.01}, model=deep)
    assert any("vanishing gradient at hidden1" in warning for warning in result["warnings"])
    healthy, _ = train({"epochs": 1})
    assert healthy["warnings"] == []


def test_channels_last_gives_the_same_run() -> None:
    plain, _ = train({"epochs": 1})
    nhwc, _ = train({"epochs": 1, "channels_last": True})
    assert nhwc["test_acc"] == pytest.approx(plain["test_acc"], abs=0.02)

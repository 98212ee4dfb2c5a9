"""A sweep's settings and its trials' bodies, without a database."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.jobs.kinds import get_kind
from core.jobs.kinds.sweep import trial_spec
from core.jobs.schemas import JobCreate
from core.jobs.sweep_schemas import Range, SweepSettings, full_path, read_path, trial_body

BASE: dict[str, Any] = {
    "kind": "sweep",
    "model": {"arch": "mlp"},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 3, "lr": 0.1},
}


def test_bare_names_are_hyperparameters_else_net_options() -> None:
    assert full_path("lr") == "hyperparameters.lr"
    assert full_path("batch_size") == "hyperparameters.batch_size"
    assert full_path("hidden_sizes") == "model.config.hidden_sizes"
    assert full_path("model.input_size") == "model.input_size"


def test_a_range_is_int_when_both_bounds_are() -> None:
    assert Range(low=16, high=128).is_int
    assert not Range(low=0, high=0.5).is_int
    assert not Range(low=0, high=1, type="float").is_int
    with pytest.raises(ValidationError):
        Range(low=1.0, high=0.5)


def test_grid_size_and_default_trials() -> None:
    grid = SweepSettings(space={"lr": [0.1, 0.2], "dropout": [0.0, 0.1, 0.2]}, search="grid")
    assert grid.grid_size == 6 and grid.total_trials == 6 and len(grid.grid_points()) == 6
    assert SweepSettings(space={"lr": [0.1]}).total_trials == 10
    assert SweepSettings(space={"lr": [0.1]}, metric="val_loss").maximize is False
    assert SweepSettings(space={"lr": [0.1]}, metric="val_acc").metric_key == ("val", "acc")


def test_a_trial_is_the_base_with_its_values_written_in() -> None:
    spec = JobCreate.model_validate({**BASE, "sweep": {"space": {"lr": [0.5]}}})
    trial = trial_spec(spec, {"hyperparameters.lr": 0.5, "model.config.hidden_sizes": [8]})
    assert (trial.kind, trial.sweep, trial.hyperparameters.lr) == ("train", None, 0.5)
    assert trial.model.config == {"hidden_sizes": [8]}
    assert trial.hyperparameters.epochs == 3 and get_kind("train").planned_epochs(trial) == 3
    assert get_kind("sweep").planned_epochs(spec) == 30  # 10 trials of 3 epochs
    body = trial_body({"a": {"b": 1}, "c": None}, {"a.b": 2, "c.d": 3})
    assert body == {"a": {"b": 2}, "c": {"d": 3}} and read_path(body, "c.d") == 3


def test_a_finetune_sweep_makes_finetune_trials() -> None:
    body = {
        **BASE,
        "finetune": {"source": {"job_id": "abc"}, "freeze": "all_but_head"},
        "sweep": {"space": {"finetune.backbone_lr_mult": [0.0, 0.1]}},
    }
    spec = JobCreate.model_validate(body)
    trial = trial_spec(spec, {"finetune.backbone_lr_mult": 0.0})
    assert trial.kind == "finetune" and trial.finetune is not None
    assert trial.finetune.backbone_lr_mult == 0.0
    with pytest.raises(ValidationError, match="finetune settings need kind"):
        JobCreate.model_validate({**body, "kind": "train", "sweep": None})


def test_val_metrics_need_a_validation_split() -> None:
    body = {**BASE, "dataset": {"name": "digits", "val_fraction": 0.0}}
    with pytest.raises(ValidationError, match="val_fraction"):
        JobCreate.model_validate({**body, "sweep": {"space": {"lr": [0.1]}}})

"""Regression training against the course's printed numbers (ch. 3.6, 3.7, 11.2)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

import models
from core.artifacts import ArtifactStore
from core.datasets import load_raw
from core.db import Database
from core.jobs import metrics, queries
from core.jobs.schemas import JobCreate
from core.preprocessing import Preprocessing, apply
from core.registry import queries as registry
from tests.factories import add_job
from worker.regression import fit_regression
from worker.runner import JobRunner
from worker.training_state import Callbacks, EpochReport

LINEAR = {"hidden_sizes": [], "flat_features": True}
POLYNOMIAL = {**LINEAR, "bias": False}  # the book's model: x^0 = 1 is its constant term
BOOK_NORMAL_W = [5.010, 1.235, -3.423, 5.503]
CPU = torch.device("cpu")


def spec(
    dataset: str, *, arch: str = "mlp", config: dict[str, Any] | None = None, **overrides: Any
) -> JobCreate:
    """A regression job on the whole training part (val_fraction 0, as the book trains)."""
    model: dict[str, Any] = {"arch": arch, "config": LINEAR if config is None else config}
    if "input_size" in overrides:
        model["input_size"] = overrides.pop("input_size")
    val_fraction = overrides.pop("val_fraction", 0.0)
    return JobCreate.model_validate(
        {
            "model": model,
            "dataset": {"name": dataset, "val_fraction": val_fraction},
            "hyperparameters": {"layer_diagnostics": False, **overrides},
        }
    )


def train(job: JobCreate, tmp_path: Path) -> tuple[dict[str, Any], list[EpochReport], list[dict]]:
    reports: list[EpochReport] = []
    payloads: list[dict[str, Any]] = []
    callbacks = Callbacks(
        on_epoch=reports.append, on_checkpoint=lambda epoch, payload: payloads.append(payload)
    )
    result = fit_regression(job, device=CPU, data_dir=tmp_path, callbacks=callbacks)
    return result, reports, payloads


def poly(features: int, epochs: int = 400) -> JobCreate:
    """The book's polynomial recipe: a bias-free linear model, MSE, SGD lr 0.01, batch 10,
    PyTorch's default init."""
    return spec(
        "poly_regression",
        config=POLYNOMIAL,
        input_size=features,
        epochs=epochs,
        lr=0.01,
        batch_size=10,
        init="default",
    )


def test_the_normal_polynomial_fit_recovers_the_books_weights(tmp_path: Path) -> None:
    result, reports, payloads = train(poly(4), tmp_path)
    w, b = result["weights"]["w"], result["weights"]["b"]
    assert len(w) == 4 and b is None  # no bias: w[0] is the constant term, as in the book
    assert w == pytest.approx(BOOK_NORMAL_W, abs=0.2)
    assert w[0] == pytest.approx(BOOK_NORMAL_W[0], abs=0.05)
    assert result["train_loss"] < 0.02 and result["test_loss"] < 0.02  # book: ~0.011 / 0.011
    assert "test_acc" not in result and result["splits"] == {"train": 100, "val": 0, "test": 100}
    assert len(reports) == 400 and {("train", "loss"), ("train", "lr")} <= set(reports[0].metrics)
    assert ("val", "loss") not in reports[0].metrics
    assert [payload["epoch"] for payload in payloads[-2:]] == [399, 400]


def test_two_features_underfit(tmp_path: Path) -> None:
    result, _, _ = train(poly(2, epochs=100), tmp_path)
    assert len(result["weights"]["w"]) == 2
    assert result["train_loss"] > 1.0 and result["test_loss"] > 1.0  # book: ~8.4 / 15.6


def test_a_checkpoint_predicts_raw_rows_as_training_evaluated_them(tmp_path: Path) -> None:
    result, _, payloads = train(poly(4, epochs=20), tmp_path)
    payload = payloads[-1]
    assert (payload["arch"], payload["num_classes"], payload["input_size"]) == ("mlp", 1, 4)
    assert {"in_channels", "config", "optimizer", "state_dict", "preprocessing"} <= set(payload)
    net = models.get_model(
        payload["arch"],
        in_channels=payload["in_channels"],
        num_classes=payload["num_classes"],
        input_size=payload["input_size"],
        **payload["config"],
    )
    net.load_state_dict(payload["state_dict"], strict=True)
    raw = load_raw("poly_regression", root=tmp_path)
    inputs = apply(Preprocessing.from_dict(payload["preprocessing"]), raw.inputs[100:])
    with torch.no_grad():
        test_loss = F.mse_loss(net.eval()(inputs).squeeze(-1), raw.targets[100:]).item()
    assert test_loss == pytest.approx(result["test_loss"], rel=1e-5)


def test_weight_decay_shrinks_w_and_helps_on_held_out_data(tmp_path: Path) -> None:
    """ch. 3.7: lr 0.003, batch 5, 100 epochs, w ~ N(0, 1); book: |w| 12.96 vs 0.356."""
    results = {
        wd: train(
            spec(
                "linear_highdim",
                epochs=100,
                lr=0.003,
                batch_size=5,
                weight_decay=wd,
                init="normal",
                init_std=1.0,
            ),
            tmp_path,
        )[0]
        for wd in (0.0, 3.0)
    }
    plain, decayed = results[0.0], results[3.0]
    assert len(plain["weights"]["w"]) == 200
    assert plain["w_norm"] > 10 and decayed["w_norm"] < 1  # book: 12.96 vs 0.356
    assert plain["train_loss"] < 1e-3  # it fits its 20 rows...
    assert decayed["test_loss"] < plain["test_loss"] / 10  # ...and generalises far worse


def test_validation_loss_is_recorded_when_there_is_a_validation_split(tmp_path: Path) -> None:
    job = spec("poly_regression", input_size=4, epochs=2, lr=0.01, batch_size=10, val_fraction=0.1)
    result, reports, _ = train(job, tmp_path)
    assert ("val", "loss") in reports[-1].metrics and result["val_loss"] is not None
    assert result["splits"] == {"train": 90, "val": 10, "test": 100}


def test_parametric_attention_pooling_learns_its_width(tmp_path: Path) -> None:
    """ch. 11.2: SGD lr 0.5, 5 full-batch epochs, summed loss (book ~48 -> 12.4)."""
    job = spec(
        "kernel_regression", arch="nadaraya_watson", config={"parametric": True}, epochs=5, lr=0.5
    )
    result, reports, payloads = train(job, tmp_path)
    losses = [report.metrics[("train", "loss")] for report in reports]
    assert len(losses) == 5 and losses[-1] < losses[0] / 2
    assert all(later <= earlier for earlier, later in pairwise(losses))
    assert result["w"] is not None and result["w"] > 1  # the kernel narrowed from w < 1
    attention = torch.tensor(result["attention_weights"]["values"])
    assert result["attention_weights"]["shape"] == [50, 50] and attention.shape == (50, 50)
    assert torch.allclose(attention.sum(dim=1), torch.ones(50), atol=1e-5)
    assert payloads[-1]["train_keys"].shape == (50,) and payloads[-1]["train_values"].shape == (50,)
    assert set(payloads[-1]["state_dict"]) == {"w"}


def test_non_parametric_attention_pooling_is_evaluated_once(tmp_path: Path) -> None:
    job = spec("kernel_regression", arch="nadaraya_watson", config={"parametric": False}, epochs=7)
    result, reports, payloads = train(job, tmp_path)
    assert [report.epoch for report in reports] == [1] and len(payloads) == 1
    assert result["w"] is None and result["parameters"] == 0 and result["epochs"] == 1
    assert payloads[0]["optimizer"] is None and payloads[0]["state_dict"] == {}
    assert result["test_mse"] == pytest.approx(result["test_loss"] / 50)


def test_a_regression_job_runs_through_the_runner(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(
            session,
            model={"arch": "mlp", "config": LINEAR, "input_size": 4},
            dataset={"name": "poly_regression", "val_fraction": 0.1},
            hyperparameters={"epochs": 3, "batch_size": 10, "lr": 0.01, "keep_checkpoints": 1},
        ).id
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w1").run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        result = job.result
        assert result is not None and "test_acc" not in result and result["test_loss"] > 0
        assert len(result["weights"]["w"]) == 4
        names = {(m.split, m.name) for m in metrics.list_metrics(session, job_id=job_id)}
        assert {("train", "loss"), ("val", "loss"), ("train", "lr")} <= names
        assert registry.model_ids_for_jobs(session, job_ids=[job_id])[job_id]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": {"arch": "lenet"}, "dataset": {"name": "poly_regression"}},
            "lenet is a classification model; poly_regression is a regression dataset",
        ),
        (
            {"model": {"arch": "nadaraya_watson"}, "dataset": {"name": "digits"}},
            "nadaraya_watson is a regression model; digits is a classification dataset",
        ),
        (
            {"model": {"arch": "mlp"}, "dataset": {"name": "poly_regression"}},
            'needs config "flat_features": true',
        ),
        (
            {"model": {"arch": "nadaraya_watson"}, "dataset": {"name": "poly_regression"}},
            "pools over one scalar feature",
        ),
        (
            {
                "model": {"arch": "mlp", "config": LINEAR, "input_size": 21},
                "dataset": {"name": "poly_regression"},
            },
            "must be 1-20, got 21",
        ),
        (
            {
                "kind": "kfold",
                "model": {"arch": "mlp", "config": LINEAR},
                "dataset": {"name": "linear_highdim"},
            },
            "not available for regression datasets",
        ),
    ],
)
def test_submission_refuses_a_model_that_does_not_fit_the_task(
    body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        JobCreate.model_validate(body)

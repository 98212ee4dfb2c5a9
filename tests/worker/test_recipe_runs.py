"""Course recipes run: a short version of each through the real runner, and the synthetic ones in
full, whose numbers must land inside the book's tolerances (ch. 3.6, 3.7, 11.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.jobs.schemas import JobCreate
from core.recipes import compare, get_recipe, list_recipes
from core.registry import queries as registry
from worker.regression import fit_regression
from worker.runner import JobRunner

CPU = torch.device("cpu")
# Short: one epoch (two for a k-fold's folds), digits where the book's data are absent.
SHORT = {"hyperparameters": {"epochs": 1, "batch_size": 64}, "device": "cpu"}
SLOW = {"alexnet", "nin", "googlenet", "resnet18", "vgg-small", "finetune-scratch"}


def short_request(name: str) -> dict[str, Any]:
    recipe = get_recipe(name)
    body: dict[str, Any] = {"recipe": name, **SHORT}
    if recipe.variants:
        body["recipe_variant"] = recipe.variants[0].name
    if name == "kfold":
        body["kfold"] = {"k": 2}
    return body


def run_job(db: Database, store: ArtifactStore, body: dict[str, Any]) -> dict[str, Any]:
    """Store the job as the API does, run it with the real runner, return the job's JSON."""
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=JobCreate.model_validate(body), queue="cpu").id
    JobRunner(db=db, store=store, data_dir=store.root, worker_name="test").run(job_id)
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        model_id = registry.model_ids_for_jobs(session, job_ids=[job_id])[job_id]
        return {"id": job_id, "params": job.params, "result": job.result, "model_id": model_id}


RUNNABLE = [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
    for name in list_recipes()
    if "finetune.source" not in get_recipe(name).requires
]


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_short_version_of_each_recipe_runs_and_is_set_beside_the_book(
    name: str, sqlite_db: Database, store: ArtifactStore
) -> None:
    job = run_job(sqlite_db, store, short_request(name))
    comparison = compare(job["params"], job["result"])
    assert comparison is not None and comparison.recipe == name
    # Every number the recipe is judged by is in the result (within is True or False, not None).
    assert all(check.within is not None for check in comparison.checks), comparison.checks


@pytest.mark.slow
def test_the_finetune_recipe_starts_from_a_trained_job(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    source = run_job(sqlite_db, store, {**short_request("finetune-scratch")})
    body = {**short_request("finetune"), "finetune": {"source": {"job_id": source["id"]}}}
    job = run_job(sqlite_db, store, body)
    assert source["id"] in job["result"]["finetune"]["source"]  # names the job it started from


def full(name: str, tmp_path: Path) -> Any:
    """The recipe exactly as the book runs it, on the engine; its comparison with the book."""
    spec = JobCreate.model_validate({"recipe": name, "device": "cpu"})
    result = fit_regression(spec, device=CPU, data_dir=tmp_path)
    comparison = compare(spec.model_dump(mode="json"), result)
    assert comparison is not None and comparison.overrides == []
    return result, comparison


def test_the_normal_polynomial_fit_recovers_the_true_weights(tmp_path: Path) -> None:
    _, comparison = full("poly-normal", tmp_path)
    weights = comparison.ours["weights"]
    assert weights == pytest.approx([5.0, 1.2, -3.4, 5.6], abs=0.2)
    assert comparison.within is True


def test_weight_decay_shrinks_the_weights_as_the_book_shows(tmp_path: Path) -> None:
    plain, plain_comparison = full("weight-decay-0", tmp_path)
    decayed, decayed_comparison = full("weight-decay-3", tmp_path)
    assert plain["w_norm"] > 5 and decayed["w_norm"] < 1
    assert decayed["test_loss"] < plain["test_loss"]
    assert plain_comparison.within is True and decayed_comparison.within is True


def test_underfitting_and_attention_pooling_land_in_the_books_range(tmp_path: Path) -> None:
    for name in ("poly-underfit", "nadaraya-watson", "nadaraya-watson-parametric"):
        _, comparison = full(name, tmp_path)
        assert comparison.within is True, (name, comparison.checks)

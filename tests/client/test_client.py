"""d2l_client against a running service: the foundation's flow, typed calls, server errors."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.datasets.digits import load_digits_raw
from core.jobs import queries
from d2l_client import APIError, AsyncClient, AsyncJob, Client, Job, JobFailedError
from tests.client.conftest import Service, TrainedJob, running_job
from tests.factories import add_job


def test_follow_yields_each_epoch_once_in_order_and_wait_returns_the_result(
    trained_job: TrainedJob, service: Service
) -> None:
    kinds = [event.kind for event in trained_job.events]
    assert kinds[0] == "status" and kinds[-1] == "end"
    epochs = [event.data["epoch"] for event in trained_job.events if event.kind == "metrics"]
    assert epochs == [1, 2, 3]
    metrics = next(event for event in trained_job.events if event.kind == "metrics")
    assert {"train_loss", "train_acc", "val_acc"} <= set(metrics.data["metrics"])
    with Client(service.url) as client:
        job = client.job(trained_job.job_id)
        result = job.wait()["result"]
        assert result is not None and result["test_acc"] > 0.5
        assert job.model_id == trained_job.model_id


def test_typed_calls_read_what_the_job_recorded(trained_job: TrainedJob, service: Service) -> None:
    with Client(service.url) as client:
        sample = load_digits_raw().inputs[0].tolist()
        answer = client.predict(trained_job.model_id, [sample], top_k=3)
        assert len(answer["predictions"]) == 1
        assert len(answer["predictions"][0]["probabilities"]) == 3
        val_acc = client.metrics(trained_job.job_id, names=["val_acc"])
        assert [point["epoch"] for point in val_acc] == [1, 2, 3]
        assert "epoch 3/3" in client.logs(trained_job.job_id)
        assert client.curves_png(trained_job.job_id).startswith(b"\x89PNG\r\n\x1a\n")
        summary = client.experiment("client", metric="test_acc")
        assert summary["best"]["job_id"] == trained_job.job_id
        table = client.compare("client")
        assert table["runs"][0]["job_id"] == trained_job.job_id
        page = client.list_jobs(experiment="client", status="succeeded")
        assert trained_job.job_id in [job["id"] for job in page["items"]]


def test_refusals_raise_with_the_servers_message(service: Service) -> None:
    with Client(service.url) as client:
        with pytest.raises(APIError) as unknown_arch:
            client.train(arch="nonet", dataset="digits")
        assert unknown_arch.value.status_code == 422
        assert "unknown arch 'nonet'" in str(unknown_arch.value)
        with pytest.raises(APIError) as missing:
            client.job("no-such-job")
        assert missing.value.status_code == 404 and "no-such-job" in missing.value.message
        with pytest.raises(APIError) as bad_metric:
            client.experiment("client", metric="accuracy")
        assert "split_name" in bad_metric.value.message


def test_wait_raises_when_the_job_failed(service: Service) -> None:
    with service.db.transaction() as session:
        job_row = add_job(session)
        queries.finish_job(session, job=job_row, status="failed", error="loss is nan at epoch 3")
        job_id = job_row.id
    with Client(service.url) as client:
        with pytest.raises(JobFailedError) as failed:
            client.job(job_id).wait()
        assert "loss is nan at epoch 3" in str(failed.value)
        assert client.job(job_id).wait(raise_on_failure=False)["status"] == "failed"


def test_the_async_client_follows_and_waits_the_same_way(
    trained_job: TrainedJob, service: Service
) -> None:
    async def scenario() -> tuple[list[int], str]:
        async with AsyncClient(service.url) as client:
            job = await client.job(trained_job.job_id)
            epochs = [
                event.data["epoch"] async for event in job.follow() if event.kind == "metrics"
            ]
            info = await job.wait()
            return epochs, info["status"]

    assert asyncio.run(scenario()) == ([1, 2, 3], "succeeded")


def test_a_predict_job_runs_on_a_worker_and_its_file_downloads(
    trained_job: TrainedJob, service: Service
) -> None:
    with Client(service.url) as client:
        job = client.predict_job(trained_job.model_id, dataset="digits", split="test", top_k=2)
        info = job.wait()
        lines = client.predictions(job.id).decode().splitlines()
    assert info["result"] is not None and info["result"]["count"] == len(lines) > 0
    first = json.loads(lines[0])
    assert len(first["probabilities"]) == 2  # top_k
    assert {"index", "label", "target", "correct"} <= set(first)

    async def downloaded() -> bytes:
        async with AsyncClient(service.url) as client:
            return await client.predictions(job.id)

    assert asyncio.run(downloaded()).decode().splitlines() == lines


def test_a_model_is_named_exported_and_deleted_from_python(service: Service) -> None:
    with Client(service.url) as client:
        model_id = client.train(
            arch="mlp", dataset="digits", experiment="py-models", hyperparameters={"epochs": 1}
        ).wait()["model_id"]
        assert model_id is not None
        named = client.alias(model_id, "py-digits", production=True)
        assert named["aliases"] == ["py-digits:1", "py-digits:latest", "py-digits:production"]
        with pytest.raises(APIError) as still_named:
            client.delete_model(model_id)
        assert still_named.value.status_code == 409 and "py-digits" in still_named.value.message
        assert client.export("py-digits:production", format="torchscript").startswith(b"PK")
        sidecar = client.export_sidecar("py-digits:latest")
        assert sidecar["model_id"] == model_id and len(sidecar["class_names"]) == 10
        assert client.remove_alias(model_id, "py-digits")["aliases"] == []
        client.delete_model(model_id)
        with pytest.raises(APIError) as gone:
            client.model(model_id)
        assert gone.value.status_code == 404


def test_a_job_is_cancelled_and_a_recipe_runs_from_python(service: Service) -> None:
    with Client(service.url) as client:
        job = running_job(client, experiment="py-cancel")
        assert job.cancel()["cancel_requested"]
        assert job.wait(raise_on_failure=False)["status"] == "cancelled"
        recipes = {recipe["name"]: recipe for recipe in client.recipes()}
        assert recipes["lenet"]["chapter"] == "7.6"
        assert client.recipe("lenet")["book"]["test_acc"] == 0.779
        run = client.run_recipe("lenet", variant="digits", hyperparameters={"epochs": 1})
        info = run.wait()
    assert info["params"]["hyperparameters"]["batch_size"] == 16  # the variant's, kept
    assert info["book"] is not None
    assert info["book"]["overrides"] == ["hyperparameters.epochs: 30 -> 1"]


def test_the_async_client_has_every_method_of_the_sync_one(service: Service) -> None:
    def methods(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert methods(Client) - {"close"} == methods(AsyncClient) - {"aclose"}
    assert methods(Job) == methods(AsyncJob)

    with Client(service.url) as client:
        job_id = running_job(client, experiment="async").id

    async def scenario() -> tuple[str, str]:
        async with AsyncClient(service.url) as client:
            job = await client.job(job_id)
            await job.cancel()
            ended = await job.wait(raise_on_failure=False)
            recipe = await client.recipe("lenet")
            return ended["status"], recipe["chapter"]

    assert asyncio.run(scenario()) == ("cancelled", "7.6")

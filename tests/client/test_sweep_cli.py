"""`d2l-service sweep` and `Client.sweep` against the in-process service (trials train in the
ThreadWorker's threads; each finished trial runs the sweep's next controller step)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from cli.main import build_parser, main
from d2l_client import AsyncClient, Client
from d2l_client.cli import parse_space
from tests.client.conftest import Service


def test_space_flags_read_as_choices_ranges_and_json_lists() -> None:
    assert parse_space(["lr=0.01,0.1", "dropout=0.1:0.5", "wd=1e-4:1e-1:log"]) == {
        "lr": [0.01, 0.1],
        "dropout": {"low": 0.1, "high": 0.5, "log": False},
        "wd": {"low": 1e-4, "high": 1e-1, "log": True},
    }
    assert parse_space(["hidden_sizes=[64],[128,64]", "activation=relu,sigmoid"]) == {
        "hidden_sizes": [[64], [128, 64]],
        "activation": ["relu", "sigmoid"],
    }
    with pytest.raises(SystemExit):
        parse_space(["lr"])
    args = build_parser().parse_args(
        ["sweep", "--space", "lr=0.1,0.2", "--trials", "4", "--max-concurrent", "2"]
    )
    assert (args.trials, args.max_concurrent, args.space) == (4, 2, ["lr=0.1,0.2"])


def test_cli_sweep_follows_to_the_best_trial(
    capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    code = main(
        [
            "sweep",
            "--url",
            service.url,
            "--arch",
            "mlp",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--hp",
            "batch_size=64",
            "layer_diagnostics=false",
            "--config",
            "hidden_sizes=[16]",
            "--space",
            "lr=0.05,0.5",
            "--space",
            "dropout=0.1:0.5",
            "--trials",
            "4",
            "--max-concurrent",
            "2",
            "--experiment",
            "cli-sweep",
            "--follow",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "succeeded" in out and "best trial " in out and "val_acc=" in out
    sweep_id = err.split()[1]  # "sweep ID queued"
    with Client(service.url) as client:
        sweep = client.get_job(sweep_id)
        trials = client.trials(sweep_id)["items"]
    result = sweep["result"] or {}
    assert len(trials) == 4 and result["best_trial"] in {trial["id"] for trial in trials}
    assert all(trial["status"] == "succeeded" for trial in trials)
    best = max(trials, key=lambda trial: trial["metrics"]["val_acc"])
    assert result["best_value"] == pytest.approx(best["metrics"]["val_acc"])
    assert json.loads(out.splitlines()[-1].split(" ", 4)[-1]) == result["best_params"]


def test_client_sweep_is_a_typed_call_that_waits_like_a_job(service: Service) -> None:
    with Client(service.url) as client:
        job = client.sweep(
            arch="mlp",
            dataset="digits",
            experiment="client-sweep",
            config={"hidden_sizes": [16]},
            hyperparameters={"epochs": 1, "batch_size": 64, "layer_diagnostics": False},
            space={"lr": [0.05, 0.2]},
            search="grid",
            metric="val_loss",
        )
        info = job.wait()
        trials = client.trials(job.id)
    assert info["kind"] == "sweep" and info["result"] is not None
    assert info["result"]["direction"] == "minimize"
    assert sorted(t["params"]["hyperparameters"]["lr"] for t in trials["items"]) == [0.05, 0.2]


def test_sync_and_async_clients_send_the_same_sweep_body() -> None:
    bodies: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(202, json={"id": "s1", "status": "queued", "kind": "sweep"})

    options: dict[str, Any] = {
        "arch": "mlp",
        "dataset": "digits",
        "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}},
        "trials": 6,
        "prune": "asha",
        "sweep_options": {"reduction_factor": 2},
        "hyperparameters": {"epochs": 3},
    }
    with Client("http://test", transport=httpx.MockTransport(answer)) as client:
        assert client.sweep(**options).id == "s1"

    async def scenario() -> str:
        transport = httpx.MockTransport(answer)
        async with AsyncClient("http://test", transport=transport) as client:
            return (await client.sweep(**options)).id

    assert asyncio.run(scenario()) == "s1"
    assert bodies[0] == bodies[1]
    assert bodies[0]["kind"] == "sweep" and bodies[0]["sweep"] == {
        "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}},
        "trials": 6,
        "prune": "asha",
        "reduction_factor": 2,
    }

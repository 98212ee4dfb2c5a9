"""A sweep through the real processes of `d2l-service up`: the API enqueues `d2l.sweep_step` by
name, the Celery worker runs it and the trials, and each finished trial sends the next step."""

from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import free_port, running, service_env, wait_for_job, wait_until_ready

pytestmark = pytest.mark.slow


def test_up_runs_a_sweep_to_its_best_trial(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    env = service_env(data_dir=str(tmp_path / "data"), torch_threads="1")
    body = {
        "kind": "sweep",
        "experiment": "e2e-sweep",
        "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
        "dataset": {"name": "digits"},
        "hyperparameters": {"epochs": 1, "batch_size": 64},
        "sweep": {"space": {"lr": [0.05, 0.5], "dropout": [0.0, 0.2]}, "search": "grid"},
    }
    with running(["d2l-service", "up", "--port", str(port)], env, log, cwd=tmp_path) as process:
        wait_until_ready(base, process, log)
        submitted = httpx.post(f"{base}/v1/jobs", json=body, timeout=30)
        assert submitted.status_code == 202, submitted.text
        sweep = wait_for_job(base, submitted.json()["id"], timeout_s=300, logs=[log])
        assert sweep["status"] == "succeeded", sweep["error"]
        trials = httpx.get(f"{base}/v1/jobs", params={"parent": sweep["id"]}, timeout=30).json()[
            "items"
        ]
    assert len(trials) == 4 and {t["status"] for t in trials} == {"succeeded"}
    best = max(trials, key=lambda trial: trial["metrics"]["val_acc"])
    assert sweep["result"]["best_value"] == pytest.approx(best["metrics"]["val_acc"])
    assert sweep["result"]["best_trial"] in {trial["id"] for trial in trials}

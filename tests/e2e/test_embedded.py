"""`d2l-service up` as a user runs it: SQLite, filesystem broker, API and worker in one command."""

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from core.datasets.digits import load_digits_raw
from core.datasets.registry import split_indices
from tests.e2e.processes import free_port, running, service_env, wait_for_job, wait_until_ready

pytestmark = pytest.mark.slow


def test_up_trains_lenet_on_digits_tracks_it_and_serves_it(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log = tmp_path / "up.log"
    env = service_env(data_dir=str(data_dir), torch_threads="1")
    with running(["d2l-service", "up", "--port", str(port)], env, log, cwd=tmp_path) as process:
        wait_until_ready(base, process, log)
        workers = httpx.get(f"{base}/v1/workers", timeout=10).json()
        for _ in range(60):  # the worker announces itself once it is ready
            if workers:
                break
            time.sleep(0.5)
            workers = httpx.get(f"{base}/v1/workers", timeout=10).json()
        (worker,) = workers
        assert worker["alive"] and worker["hostname"].startswith("embedded@")
        assert set(worker["queues"]) == {"cpu", "gpu"}
        assert worker["devices"][-1]["type"] == "cpu" and worker["devices"][-1]["memory_bytes"] > 0
        body = {"experiment": "e2e", "model": {"arch": "lenet"}, "dataset": {"name": "digits"}}
        submitted = httpx.post(f"{base}/v1/jobs", json=body, timeout=30)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(base, submitted.json()["id"], timeout_s=600, logs=[log])
        assert job["status"] == "succeeded", job["error"]
        assert job["progress"] == {"epoch": 30, "epochs": 30, "step": 0, "steps": 0}
        assert job["worker"].startswith("embedded@") and job["device"] == "cpu"
        assert job["result"]["test_acc"] >= 0.95

        metrics = httpx.get(f"{base}/v1/jobs/{job['id']}/metrics", timeout=30).json()
        keys = [(m["epoch"], m["split"], m["name"]) for m in metrics]
        names = {(m["split"], m["name"]) for m in metrics if m["split"] != "layers"}
        assert names == {
            ("train", "loss"),
            ("train", "acc"),
            ("train", "examples_per_sec"),
            ("train", "lr"),
            ("train", "grad_norm"),
            ("val", "loss"),
            ("val", "acc"),
        }
        per_epoch = len(names) + 2 * 10  # plus grad and weight norms of LeNet's 10 tensors
        assert len(keys) == len(set(keys)) == 30 * per_epoch  # one row per epoch per name

        checkpoints = httpx.get(f"{base}/v1/jobs/{job['id']}/checkpoints", timeout=30).json()
        assert [c["epoch"] for c in checkpoints] == [28, 29, 30]
        newest = data_dir / "artifacts" / checkpoints[-1]["path"]
        assert newest.stat().st_size == checkpoints[-1]["bytes"]

        raw = load_digits_raw()
        _, _, held_out = split_indices(
            len(raw.targets), val_fraction=0.1, test_fraction=0.2, seed=0
        )
        response = httpx.post(
            f"{base}/v1/models/{job['model_id']}/predict",
            json={"inputs": raw.inputs[held_out[0]].tolist()},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["class_index"] == int(raw.targets[held_out[0]])
        batch = httpx.post(
            f"{base}/v1/models/{job['model_id']}/predict",
            json={"inputs": raw.inputs[held_out].tolist()},
            timeout=30,
        ).json()["predictions"]
        correct = sum(p["class_index"] == int(y) for p, y in zip(batch, raw.targets[held_out]))
        assert correct / len(held_out) >= 0.95
    assert process.returncode is not None
    engine = create_engine(f"sqlite:///{data_dir / 'd2l.sqlite3'}")
    with engine.connect() as connection:  # the worker said goodbye on the way out
        stopped = connection.execute(text("SELECT stopped_at FROM workers")).scalar_one()
    engine.dispose()
    assert stopped is not None
    assert (data_dir / "d2l.sqlite3").exists() and (data_dir / "broker").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "up.log"]  # writes nowhere else

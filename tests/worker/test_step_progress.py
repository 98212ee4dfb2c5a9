"""Live progress within an epoch: the heartbeat records the engine's step, and the job and its
event stream show it with an estimate of the time left."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from api.routes.events import progress_event
from core.artifacts import open_artifact_store
from core.db import Database
from core.jobs import queries
from core.settings import Settings
from tests.factories import add_job
from worker.runner import JobRunner


def test_a_running_job_shows_its_step_within_the_epoch(
    settings: Settings, sqlite_db: Database, client: TestClient
) -> None:
    with sqlite_db.transaction() as session:  # 315 steps of 4 an epoch: a few seconds
        job_id = add_job(session, hyperparameters={"epochs": 2, "batch_size": 4}).id
    runner = JobRunner(
        db=sqlite_db,
        store=open_artifact_store(settings),
        data_dir=settings.datasets_dir,
        worker_name="w",
        heartbeat_timeout_s=2.0,  # a beat every 0.5 s
    )
    training = threading.Thread(target=runner.run, args=(job_id,))
    training.start()
    seen: list[dict[str, int]] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and training.is_alive():
            progress = client.get(f"/v1/jobs/{job_id}").json()["progress"]
            if progress["steps"]:
                seen.append(progress)
                if len({p["step"] for p in seen}) >= 3:
                    break
            time.sleep(0.2)
        with sqlite_db.sessions() as session:
            event = progress_event(queries.get_job(session, job_id=job_id), step=0).data
    finally:
        with sqlite_db.transaction() as session:  # stop it: the test has seen what it needs
            queries.request_cancel(session, job=queries.get_job(session, job_id=job_id))
        training.join(timeout=60)
    steps = [p["step"] for p in seen]
    assert len(set(steps)) >= 3, seen  # it moves between beats...
    assert all(0 <= p["step"] <= p["steps"] for p in seen)
    assert {p["steps"] for p in seen} == {315}  # digits' 1,257 training examples, 4 a step
    assert event["epoch_steps"] == 315 and 0 < event["epoch_step"] <= 315
    assert event["eta_s"] is not None and event["eta_s"] > 0
    finished = client.get(f"/v1/jobs/{job_id}").json()
    assert finished["status"] == "cancelled"
    assert (finished["progress"]["step"], finished["progress"]["steps"]) == (0, 0)

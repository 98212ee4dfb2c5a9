"""A sweep's trials are jobs of its owner: they count against the queued cap and the rate, and the
sweep's controller holds back the trials that do not fit until there is room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.jobs import queries, sweep_queries
from core.jobs.quota import Quota
from core.jobs.schemas import FINISHED_STATUSES
from tests.api.test_auth import SMALL_JOB, Service, make_service
from tests.conftest import RecordingQueue
from worker.reaper import wake_sweeps
from worker.sweep_control import sweep_step


def sweep(trials: int, max_concurrent: int) -> dict[str, Any]:
    lrs = [0.01 * (n + 1) for n in range(trials)]
    space = {"hyperparameters.lr": lrs}
    return SMALL_JOB | {
        "kind": "sweep",
        "sweep": {"space": space, "search": "grid", "max_concurrent": max_concurrent},
    }


def submit(service: Service, headers: dict[str, str], body: dict[str, Any]) -> str:
    answer = service.client.post("/v1/jobs", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def step(service: Service, sweep_id: str) -> list[str]:
    """The sweep's controller step, as the worker runs it."""
    quota = Quota.of(service.settings)
    return sweep_step(service.db, RecordingQueue(), sweep_id, quota=quota)  # type: ignore[arg-type]


def statuses(service: Service, owner: str) -> list[str]:
    with service.db.sessions() as session:
        jobs, _ = queries.list_jobs(
            session, experiment=None, status=None, limit=500, offset=0, parent=None
        )
        return [job.status for job in jobs if job.owner == owner and job.kind != "sweep"]


def start(service: Service, job_ids: list[str]) -> None:
    """Workers take these trials: they leave the queue."""
    with service.db.transaction() as session:
        for job_id in job_ids:
            job = queries.lock_job(session, job_id=job_id)
            queries.mark_running(session, job=job, worker="w", device="cpu")


def test_two_sweeps_never_queue_more_trials_than_the_cap(tmp_path: Path) -> None:
    for service in make_service(tmp_path, submit_rate_per_minute=0, max_queued_per_owner=4):
        gina = service.token("gina")
        first, second = submit(service, gina, sweep(6, 4)), submit(service, gina, sweep(6, 4))
        started = step(service, first) + step(service, second)
        assert len(started) == 4 and statuses(service, "gina").count("queued") == 4
        refused = service.client.post("/v1/jobs", json=SMALL_JOB, headers=gina)
        assert refused.status_code == 429, refused.text
        assert "sweep's trials count" in refused.json()["detail"]
        assert "D2L_MAX_QUEUED_PER_OWNER" in refused.json()["detail"]
        start(service, started[:2])  # room for two: the held-back sweep takes them
        assert step(service, first) == [] and len(step(service, second)) == 2
        assert statuses(service, "gina").count("queued") == 4
        other = service.token("hal")  # another owner's cap is their own
        assert service.client.post("/v1/jobs", json=SMALL_JOB, headers=other).status_code == 202


def test_a_held_back_sweep_is_stepped_again_once_there_is_room(tmp_path: Path) -> None:
    for service in make_service(tmp_path, submit_rate_per_minute=0, max_queued_per_owner=2):
        ivan = service.token("ivan")
        sweep_id = submit(service, ivan, sweep(3, 3))
        waiting = [submit(service, ivan, SMALL_JOB) for _ in range(2)]
        assert step(service, sweep_id) == []  # the cap is full: no trial yet
        with service.db.sessions() as session:  # held back, not concluded with no trials
            assert queries.get_job(session, job_id=sweep_id).status not in FINISHED_STATUSES
        start(service, waiting)
        queue = RecordingQueue()  # the reaper, on its next round, asks for the sweep's step
        assert wake_sweeps(service.db, queue, idle_s=0) == [sweep_id]  # type: ignore[arg-type]
        assert queue.steps == [sweep_id]
        assert len(step(service, sweep_id)) == 2
        assert wake_sweeps(service.db, queue, idle_s=60) == []  # type: ignore[arg-type]
        with service.db.sessions() as session:
            assert len(sweep_queries.list_trials(session, sweep_id=sweep_id)) == 2


def test_trials_count_against_the_submission_rate(tmp_path: Path) -> None:
    for service in make_service(tmp_path, submit_rate_per_minute=4, max_queued_per_owner=0):
        jo = service.token("jo")
        sweep_id = submit(service, jo, sweep(6, 6))  # the sweep itself is one submission
        assert len(step(service, sweep_id)) == 3  # three more fit in this minute
        refused = service.client.post("/v1/jobs", json=SMALL_JOB, headers=jo)
        assert refused.status_code == 429 and "D2L_SUBMIT_RATE_PER_MINUTE" in refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60

"""GET /v1/jobs/{id}/events: what a reader of the stream sees while a job trains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from core.db import Database
from core.jobs import queries
from core.jobs.metrics import record_epoch
from core.settings import Settings
from core.tables import utcnow
from d2l_client.sse import Event, EventParser
from tests.conftest import RecordingQueue
from tests.factories import add_job
from tests.live_server import serve


@pytest.fixture
def base_url(settings: Settings, sqlite_db: Database) -> Iterator[str]:
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    with serve(app) as url:
        yield url


def new_job(db: Database, epochs: int = 3) -> str:
    with db.transaction() as session:
        return add_job(session, hyperparameters={"epochs": epochs, "batch_size": 64}).id


def record(db: Database, job_id: str, epoch: int, *, val_acc: float = 0.5) -> None:
    with db.transaction() as session:
        values = {
            ("train", "loss"): 1.0 / epoch,
            ("train", "acc"): 0.4,
            ("val", "acc"): val_acc,
            ("layers", "0.weight/grad_norm"): 0.1,
        }
        record_epoch(session, job_id=job_id, epoch=epoch, step=10 * epoch, values=values)


def set_status(db: Database, job_id: str, status: str) -> None:
    with db.transaction() as session:
        job = queries.get_job(session, job_id=job_id)
        if status == "running":
            queries.mark_running(session, job=job, worker="w1", device="cpu")
        else:
            queries.finish_job(session, job=job, status=status, result={"test_acc": 0.9})


def events(response: httpx.Response) -> Iterator[Event]:
    parser = EventParser()
    for line in response.iter_lines():
        event = parser.feed(line)
        if event is not None:
            yield event


def until(stream: Iterator[Event], kind: str, seen: list[Event]) -> Event:
    """Read (and keep) events up to the first of `kind`."""
    for event in stream:
        seen.append(event)
        if event.kind == kind:
            return event
    raise AssertionError(f"stream ended before a {kind!r} event: {seen}")


def test_stream_yields_every_epoch_once_in_order_then_ends(
    base_url: str, sqlite_db: Database
) -> None:
    job_id = new_job(sqlite_db)
    seen: list[Event] = []
    with httpx.stream("GET", f"{base_url}/v1/jobs/{job_id}/events", timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        assert until(stream, "status", seen).data["status"] == "queued"
        set_status(sqlite_db, job_id, "running")
        record(sqlite_db, job_id, 1)
        until(stream, "progress", seen)
        record(sqlite_db, job_id, 2)
        record(sqlite_db, job_id, 2, val_acc=0.55)  # a re-run epoch (redelivery) is upserted
        record(sqlite_db, job_id, 3)
        until(stream, "progress", seen)
        set_status(sqlite_db, job_id, "succeeded")
        seen.extend(stream)

    epochs = [event.data["epoch"] for event in seen if event.kind == "metrics"]
    assert epochs == [1, 2, 3]
    first = next(event for event in seen if event.kind == "metrics")
    assert first.data["metrics"] == {"train_loss": 1.0, "train_acc": 0.4, "val_acc": 0.5}
    assert first.data["step"] == 10 and first.data["run"] is None
    statuses = [event.data["status"] for event in seen if event.kind == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert seen[-1].kind == "end" and seen[-1].data["status"] == "succeeded"
    progress = [event.data for event in seen if event.kind == "progress"]
    assert progress[-1]["epoch"] == 3 and progress[-1]["epochs"] == 3
    assert progress[-1]["eta_s"] == 0


def test_several_readers_each_get_the_whole_history_and_what_follows(
    base_url: str, sqlite_db: Database
) -> None:
    job_id = new_job(sqlite_db)
    set_status(sqlite_db, job_id, "running")
    record(sqlite_db, job_id, 1)
    url = f"{base_url}/v1/jobs/{job_id}/events"
    with (
        httpx.stream("GET", url, timeout=30) as first,
        httpx.stream("GET", url, timeout=30) as second,
    ):
        streams = [events(first), events(second)]
        seen: list[list[Event]] = [[], []]
        for stream, kept in zip(streams, seen, strict=True):
            assert until(stream, "metrics", kept).data["epoch"] == 1
        record(sqlite_db, job_id, 2)
        for stream, kept in zip(streams, seen, strict=True):
            assert until(stream, "metrics", kept).data["epoch"] == 2
        set_status(sqlite_db, job_id, "failed")
        for stream, kept in zip(streams, seen, strict=True):
            kept.extend(stream)
    for kept in seen:
        assert [e.data["epoch"] for e in kept if e.kind == "metrics"] == [1, 2]
        assert kept[-1].kind == "end" and kept[-1].data["status"] == "failed"


def test_a_finished_job_replays_its_epochs_and_resumes_after_last_event_id(
    base_url: str, sqlite_db: Database
) -> None:
    job_id = new_job(sqlite_db)
    set_status(sqlite_db, job_id, "running")
    for epoch in (1, 2, 3):
        record(sqlite_db, job_id, epoch)
    set_status(sqlite_db, job_id, "succeeded")
    url = f"{base_url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, timeout=30) as response:
        replay = list(events(response))
    metrics = [event for event in replay if event.kind == "metrics"]
    assert [event.data["epoch"] for event in metrics] == [1, 2, 3]
    assert [event.kind for event in replay][-2:] == ["status", "end"]

    headers = {"last-event-id": metrics[0].id or ""}
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        resumed = [event.data["epoch"] for event in events(response) if event.kind == "metrics"]
    assert resumed == [2, 3]


def test_a_finished_jobs_elapsed_time_stops_at_its_end(base_url: str, sqlite_db: Database) -> None:
    job_id = new_job(sqlite_db)
    set_status(sqlite_db, job_id, "running")
    record(sqlite_db, job_id, 1)
    set_status(sqlite_db, job_id, "succeeded")
    with sqlite_db.transaction() as session:  # it ran for 42 s, an hour ago
        job = queries.get_job(session, job_id=job_id)
        job.started_at = utcnow() - timedelta(hours=1)
        job.finished_at = job.started_at + timedelta(seconds=42)
    url = f"{base_url}/v1/jobs/{job_id}/events"
    for _ in range(2):  # every read tells the same
        with httpx.stream("GET", url, timeout=30) as response:
            progress = [event.data for event in events(response) if event.kind == "progress"]
        assert [data["elapsed_s"] for data in progress] == [42.0]


def test_unknown_job_and_bad_last_event_id_are_refused(base_url: str, sqlite_db: Database) -> None:
    missing = httpx.get(f"{base_url}/v1/jobs/nope/events", timeout=30)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    job_id = new_job(sqlite_db)
    bad = httpx.get(
        f"{base_url}/v1/jobs/{job_id}/events", headers={"last-event-id": "x"}, timeout=30
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["header", "last-event-id"]


def test_kfold_folds_are_told_apart_by_run() -> None:
    from api.routes.events import metric_events
    from core.jobs.metrics import MetricPoint

    points = [
        MetricPoint(1, 1, 5, "c0/f1/train", "loss", 0.9),
        MetricPoint(2, 1, 5, "c0/f1/val", "acc", 0.5),
        MetricPoint(3, 1, 5, "c0/f2/train", "loss", 0.8),
    ]
    runs = [(event.data["run"], event.data["metrics"], event.id) for event in metric_events(points)]
    assert runs == [
        ("c0/f1", {"train_loss": 0.9, "val_acc": 0.5}, "2"),
        ("c0/f2", {"train_loss": 0.8}, "3"),
    ]

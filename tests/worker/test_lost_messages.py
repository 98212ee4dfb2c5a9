"""The database is the source of truth for what waits: a queued job whose broker message is gone
is published again by the reaper, and the duplicate that may make is harmless."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import metrics, queries
from core.queue import JobQueue, make_celery
from core.settings import Settings
from core.tables import Job, Model, utcnow
from tests.factories import add_job
from worker.reaper import republish_lost
from worker.runner import JobRunner

AGE_S = 60.0


def broker_messages(settings: Settings) -> list[Path]:
    """The embedded (filesystem) broker's waiting messages: one file each."""
    return sorted((settings.broker_dir / "queue").glob("*.msg"))


def sent_job(message: Path) -> str:
    """The job id a message carries (Celery's protocol 2: body = [args, kwargs, embed])."""
    envelope = json.loads(message.read_text())
    args = json.loads(base64.b64decode(envelope["body"]))[0]
    return str(args[0])


def queued_and_sent(db: Database, job_queue: JobQueue, count: int) -> list[str]:
    """`count` queued jobs, each published as the API does, sent `AGE_S` + 1 s ago."""
    with db.transaction() as session:
        job_ids = [add_job(session, hyperparameters={"epochs": 2, "batch_size": 256}).id]
        job_ids += [add_job(session).id for _ in range(count - 1)]
    for job_id in job_ids:
        job_queue.enqueue(job_id, queue="cpu")
    with db.transaction() as session:
        sent_at = utcnow() - timedelta(seconds=AGE_S + 1)
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(sent_at=sent_at))
    return job_ids


def test_queued_jobs_whose_messages_were_lost_are_sent_again_once(
    settings: Settings, sqlite_db: Database
) -> None:
    job_queue = JobQueue(make_celery(settings), settings)
    job_ids = queued_and_sent(sqlite_db, job_queue, 3)
    assert republish_lost(sqlite_db, job_queue, older_than_s=AGE_S) == []  # all still there
    assert len(broker_messages(settings)) == 3
    for message in broker_messages(settings):  # the broker restarts without its messages
        message.unlink()
    assert sorted(republish_lost(sqlite_db, job_queue, older_than_s=AGE_S)) == sorted(job_ids)
    assert len(broker_messages(settings)) == 3
    assert republish_lost(sqlite_db, job_queue, older_than_s=AGE_S) == []  # just sent: not again
    with sqlite_db.transaction() as session:  # a job the API has just stored is left alone
        fresh = add_job(session).id
    assert republish_lost(sqlite_db, job_queue, older_than_s=AGE_S) == []
    assert fresh not in [sent_job(message) for message in broker_messages(settings)]


def test_a_duplicate_message_trains_the_job_once(
    settings: Settings, sqlite_db: Database, store: ArtifactStore
) -> None:
    """One of two messages lost: both jobs are sent again, so the other now has two. The
    second delivery finds it finished and does nothing."""
    job_queue = JobQueue(make_celery(settings), settings)
    kept, lost = queued_and_sent(sqlite_db, job_queue, 2)
    [lost_message] = [m for m in broker_messages(settings) if sent_job(m) == lost]
    lost_message.unlink()
    assert sorted(republish_lost(sqlite_db, job_queue, older_than_s=AGE_S)) == sorted([kept, lost])
    deliveries = [m for m in broker_messages(settings) if sent_job(m) == kept]
    assert len(deliveries) == 2
    runner = JobRunner(db=sqlite_db, store=store, data_dir=Path("/nonexistent"), worker_name="w")
    for _ in deliveries:
        runner.run(kept)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=kept)
        assert (job.status, job.attempts, job.epoch) == ("succeeded", 1, 2)
        losses = metrics.list_metrics(session, job_id=kept, name="loss")
        assert sorted(m.epoch for m in losses if m.split == "train") == [1, 2]
        assert [c.epoch for c in queries.list_checkpoints(session, job_id=kept)] == [1, 2]
        models = session.query(Model).filter(Model.job_id == kept).count()
        assert models == 1

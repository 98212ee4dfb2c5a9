"""The worker process: `celery -A worker.app worker` (what `d2l-service worker` runs).

Builds the shared Celery app from settings, registers the tasks, and gives each worker child
its own database connections (pooled connections must not cross a fork).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import (
    setup_logging,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from core import workers
from core.artifacts import open_artifact_store
from core.db import Database
from core.jobs import queries
from core.leftovers import sweep_leftovers
from core.queue import JobQueue, make_celery
from core.settings import get_settings
from worker.devices import inventory
from worker.reaper import reap, republish_lost, wake_sweeps

settings = get_settings()
settings.ensure_dirs()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]  # imported by the worker at start: they register on `app`
database = Database(settings.database_url)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Operator-facing logs: job lifecycle and per-epoch summaries, not per-step noise."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    database.dispose()
    settings.apply_torch_threads()


HEARTBEAT_S = 15
_stop_heartbeat = threading.Event()
log = logging.getLogger(__name__)


def _hostname(sender: Any) -> str:
    """The worker's name, from a signal's sender (a consumer, a worker, or the name itself)."""
    if isinstance(sender, str):
        return sender
    return str(getattr(sender, "hostname", None) or app.conf.get("worker_hostname") or "worker")


@worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    """Record this worker's queues and devices, then keep its heartbeat fresh."""
    hostname = _hostname(sender)
    consumer = getattr(sender, "task_consumer", None)
    queues = sorted(q.name for q in consumer.queues) if consumer is not None else []
    controller = getattr(sender, "controller", None)
    jobs_at_once = getattr(controller, "concurrency", None) or app.conf.worker_concurrency or 1
    with database.transaction() as session:
        workers.register_worker(
            session, hostname=hostname, queues=queues, devices=inventory(int(jobs_at_once))
        )
    log.info("worker %s consumes %s", hostname, ", ".join(queues) or "nothing")
    threading.Thread(target=_sweep, daemon=True, name="leftovers").start()  # not in the way
    threading.Thread(target=_heartbeat, args=(hostname,), daemon=True, name="heartbeat").start()


def _sweep() -> None:
    """What processes killed midway left behind (core/leftovers.py), old enough to be sure."""
    try:
        sweep_leftovers(
            database,
            open_artifact_store(settings),
            settings.datasets_dir,
            older_than_s=settings.leftover_age_s,
        )
    except Exception as error:  # noqa: BLE001  (a leftover kept is no harm to the worker)
        log.warning("could not sweep leftovers: %s", error)


def _heartbeat(hostname: str) -> None:
    """The worker's own heartbeat, and the reaper of jobs whose worker died."""
    job_queue = JobQueue(app, settings)
    period = min(HEARTBEAT_S, settings.heartbeat_timeout_s / 2)
    while not _stop_heartbeat.wait(period):
        try:
            with database.transaction() as session:
                workers.touch_worker(session, hostname=hostname)
            reap(
                database,
                job_queue,
                timeout_s=settings.heartbeat_timeout_s,
                max_attempts=settings.max_attempts,
            )
            republish_lost(database, job_queue, older_than_s=settings.republish_queued_after_s)
            wake_sweeps(database, job_queue, idle_s=period)
        except Exception as error:  # noqa: BLE001  (a missed beat must not kill the worker)
            log.warning("heartbeat of %s failed: %s", hostname, error)


@worker_shutting_down.connect
def _step_aside(sender: Any = None, how: str = "Warm", **_: Any) -> None:
    """Warm shutdown (SIGTERM): the running jobs stop at their next step (within a heartbeat
    period) and go back to the queue, so the worker exits well inside a container's stop grace
    period and another worker resumes them from their checkpoints."""
    hostname = _hostname(sender)
    try:
        with database.transaction() as session:
            job_ids = queries.request_requeue(session, worker=hostname)
            # Marked stopping: a job it still receives before its consumer stops goes back too.
            workers.touch_worker(session, hostname=hostname, stopped=True)
    except Exception as error:  # noqa: BLE001  (the reaper requeues them later anyway)
        log.warning("could not ask %s's jobs to step aside: %s", hostname, error)
        return
    if job_ids:
        log.info("%s shutdown: jobs %s stop and go back to the queue", how, ", ".join(job_ids))


@worker_shutdown.connect
def _farewell(sender: Any = None, **_: Any) -> None:
    _stop_heartbeat.set()
    with database.transaction() as session:
        workers.touch_worker(session, hostname=_hostname(sender), stopped=True)

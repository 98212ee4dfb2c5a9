"""The Celery app both processes share, its queues and its task names.

The API sends tasks by *name* (it never imports the worker); the worker registers the task
functions under these names. Messages carry job ids only, serialised as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings

GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
QUEUES = (GPU_QUEUE, CPU_QUEUE)
RUN_JOB_TASK = "d2l.run_job"
# A sweep's controller: a short task, sent when the sweep is stored and whenever a trial ends.
SWEEP_STEP_TASK = "d2l.sweep_step"
# A job's priority as Celery's: with Redis, the worker takes lower numbers first (each queue is
# split in one list per step). The filesystem broker of the embedded mode keeps arrival order.
PRIORITIES = {"high": 0, "normal": 3, "low": 6}


def queue_for(*, wants_gpu: bool) -> str:
    """A job that asks for a GPU waits for a GPU worker; any other job for any worker."""
    return GPU_QUEUE if wants_gpu else CPU_QUEUE


def broker_transport_options(settings: Settings) -> dict[str, object]:
    """The filesystem broker keeps its messages under the data directory; others need nothing."""
    if not settings.embedded_broker:
        return {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "queue_order_strategy": "priority",
            "priority_steps": sorted(PRIORITIES.values()),
        }
    queue_dir = str(settings.broker_dir / "queue")
    return {
        "data_folder_in": queue_dir,
        "data_folder_out": queue_dir,
        "processed_folder": str(settings.broker_dir / "processed"),
        "control_folder": str(settings.broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,  # a 10 Hz directory listing: cheap, and jobs start ~0.1 s sooner
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for long, resumable, one-at-a-time training jobs."""
    app = Celery("d2l_service", broker=settings.broker_url, set_as_current=False)
    exchange = Exchange("d2l", type="direct")
    app.conf.update(
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # job state lives in the database, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name, exchange, routing_key=name) for name in QUEUES],
        task_default_queue=CPU_QUEUE,
        task_default_exchange="d2l",
        task_default_routing_key=CPU_QUEUE,
        task_default_priority=PRIORITIES["normal"],
        worker_hijack_root_logger=False,
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,  # KiB
    )
    return app


class JobQueue:
    """Sends job ids to the workers by task name, and tells whether the broker answers."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def enqueue(
        self,
        job_id: str,
        *,
        queue: str,
        time_limit_s: float | None = None,
        priority: str = "normal",
    ) -> None:
        """Publish one job id; raises kombu/OS errors when the broker cannot take it.

        `time_limit_s` is the job's own (soft) limit: Celery kills its process a grace period
        after it (the training loop stops itself at the soft limit, before that)."""
        self.app.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            queue=queue,
            routing_key=queue,
            retry=False,
            time_limit=self.settings.hard_time_limit(time_limit_s),
            priority=PRIORITIES[priority],
        )

    def send_again(self, job_id: str, queue: str, params: Mapping[str, Any]) -> None:
        """Publish a stored job once more (reaped, its message lost, or stepped aside for a
        warm shutdown) as it was first sent: on its `queue`, with the time limit and priority
        of its stored request `params`."""
        self.enqueue(
            job_id,
            queue=queue,
            time_limit_s=params.get("time_limit_s"),
            priority=params.get("priority", "normal"),
        )

    def enqueue_sweep_step(self, sweep_id: str, *, queue: str) -> None:
        """Ask a worker to advance sweep `sweep_id` (start trials, or conclude it); high
        priority, so it runs before the trials that wait on the same queue."""
        self.app.send_task(
            SWEEP_STEP_TASK,
            args=[sweep_id],
            queue=queue,
            routing_key=queue,
            retry=False,
            priority=PRIORITIES["high"],
        )

    def waiting(self, queue: str) -> int:
        """Messages waiting on `queue` in the broker, every priority counted (Redis keeps one
        list per priority step); taken but unacknowledged ones are not among them."""
        with self.app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=queue)
            return int(declared.message_count)

    def check(self) -> None:
        """Raise if the broker is unreachable (readiness probe)."""
        if self.settings.embedded_broker:
            queue_dir = self.settings.broker_dir / "queue"
            if not queue_dir.is_dir():
                raise OSError(f"broker directory {queue_dir} is missing")
            return
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)

"""A running job's heartbeat, and its ear for a cancel request or its worker's shutdown.

A thread beside the training loop writes the job's `heartbeat_at` every few seconds and reads
`cancel_requested` in the same transaction; the loop itself only looks at an event's flag before
each step, so the database is never on the training path. A job whose heartbeat stops (its
worker died, even SIGKILLed) is found by the reaper (`worker.reaper`) and queued again.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from core.db import Database
from core.jobs import queries
from worker.oom import reset_peak, resident_memory
from worker.training_state import StepProgress

log = logging.getLogger(__name__)

MAX_PERIOD_S = 5.0  # a cancel is noticed within this, however long the heartbeat timeout


def beat_period(heartbeat_timeout_s: float) -> float:
    """Four beats per timeout: one slow database write does not make a live job look dead."""
    return min(heartbeat_timeout_s / 4, MAX_PERIOD_S)


class Pulse:
    """`with Pulse(db, job_id, period=...) as pulse:` beats until the block ends;
    `pulse.cancelled` is set once someone asks to cancel the job, and `pulse.requeue` (with
    `cancelled`, so the loop stops the same way) once its worker asks it to step aside."""

    def __init__(self, db: Database, job_id: str, *, period: float) -> None:
        self.db = db
        self.job_id = job_id
        self.period = period
        self.cancelled = threading.Event()
        self.requeue = threading.Event()
        self.progress = StepProgress()  # the engine writes it; each beat records it
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pulse-{job_id}", daemon=True)

    def __enter__(self) -> Pulse:
        reset_peak()  # each beat records the memory this job's process holds, and its peak
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.period):
            memory = resident_memory() or (None, None)
            try:
                with self.db.transaction() as session:
                    cancel, requeue = queries.beat(
                        session,
                        job_id=self.job_id,
                        step=self.progress.done,
                        epoch_steps=self.progress.total,
                        rss_bytes=memory[0],
                        peak_rss_bytes=memory[1],
                    )
                if requeue and not cancel:  # a cancel outranks going back to the queue
                    self.requeue.set()
                if cancel or requeue:
                    self.cancelled.set()
            except Exception as error:  # noqa: BLE001  (a missed beat must not kill the job)
                log.warning("heartbeat of job %s failed: %s", self.job_id, error)

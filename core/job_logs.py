"""Per-job logs: what the worker logs while it runs a job, kept as a file beside its checkpoints.

The worker wraps a job in `capture(...)`; every record logged from that thread while the job
runs (the runner's, the engine's, a traceback) is appended to `logs/<job_id>.log` under the
artifact root, which the API reads back. A file, not a table: logs are append-only text, can be
long, and need no migration; on a shared artifact mount the API sees workers' logs as they grow.
Records are kept at the level the operator set (D2L_LOG_LEVEL).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_log_path(artifacts: Path, job_id: str) -> Path:
    return artifacts / "logs" / f"{job_id}.log"


class _ThisThread(logging.Filter):
    """Only records from the thread that runs the job (not the heartbeat, not another job)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread


@contextmanager
def capture(artifacts: Path, job_id: str) -> Iterator[Path]:
    """Append this thread's log records to the job's log file while the block runs (a
    redelivered job appends to the same file, so both attempts are visible)."""
    path = job_log_path(artifacts, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_ThisThread())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


def read_job_log(artifacts: Path, job_id: str, *, tail: int | None = None) -> str:
    """The job's log so far ('' before the worker has logged anything), or its last lines."""
    path = job_log_path(artifacts, job_id)
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8", errors="replace") as log_file:
        if tail is None:
            return log_file.read()
        return "".join(deque(log_file, maxlen=tail))

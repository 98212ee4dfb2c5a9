"""Per-job logs: what the worker logs while it runs a job, kept as a file beside its checkpoints.

The worker wraps a job in `capture(...)`; every record logged from that thread while the job
runs (the runner's, the engine's, a traceback) is appended to `logs/<job_id>.log` under the
artifact root, which the API reads back. A file, not a table: logs are append-only text, can be
long, and need no migration; on a shared artifact mount the API sees workers' logs as they grow.
Records are kept at the level the operator set (D2L_LOG_LEVEL).

With an object store for artifacts (D2L_ARTIFACT_URL), a worker on another machine writes the
file on its own disk, and copies it into the store, as `logs/<job_id>/<worker>.log`, when each
attempt ends (`publish_log`); the API reads those copies when it has no file of its own.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.artifacts import ArtifactStore, BaseArtifactStore

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_log_path(artifacts: Path, job_id: str) -> Path:
    return artifacts / "logs" / f"{job_id}.log"


def published_logs_prefix(job_id: str) -> str:
    """Where the store keeps the copies of a job's log, one per worker that ran it."""
    return f"logs/{job_id}"


def publish_log(store: BaseArtifactStore, artifacts: Path, job_id: str, *, worker: str) -> None:
    """Copy the job's log file into `store`, unless the store is the directory that holds it.

    Never raises: a log that could not be copied must not fail the job it describes."""
    if isinstance(store, ArtifactStore) and store.root.resolve() == artifacts.resolve():
        return
    path = job_log_path(artifacts, job_id)
    try:
        if path.is_file():
            store.write_bytes(f"{published_logs_prefix(job_id)}/{worker}.log", path.read_bytes())
    except Exception as error:  # noqa: BLE001
        logging.getLogger(__name__).warning(
            "job %s: log not copied to the store: %s", job_id, error
        )


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


def read_job_log(
    artifacts: Path,
    job_id: str,
    *,
    tail: int | None = None,
    store: BaseArtifactStore | None = None,
) -> str:
    """The job's log so far ('' before the worker has logged anything), or its last lines: the
    file on this machine, else the copies that workers elsewhere put in `store`."""
    path = job_log_path(artifacts, job_id)
    if not path.is_file():
        return _published_log(store, job_id, tail=tail) if store is not None else ""
    with path.open(encoding="utf-8", errors="replace") as log_file:
        if tail is None:
            return log_file.read()
        return "".join(deque(log_file, maxlen=tail))


def _published_log(store: BaseArtifactStore, job_id: str, *, tail: int | None) -> str:
    texts = []
    for key in store.list_keys(published_logs_prefix(job_id)):
        data = store.read_unchecked(key)
        if data is not None:
            texts.append(data.decode("utf-8", errors="replace"))
    lines = "".join(texts).splitlines(keepends=True)
    return "".join(lines if tail is None else lines[-tail:])

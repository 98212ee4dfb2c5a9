"""The worker process: `celery -A worker.app worker` (what `d2l-service worker` runs).

Builds the shared Celery app from settings, registers the tasks, and gives each worker child
its own database connections (pooled connections must not cross a fork).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, worker_process_init

from core.db import Database
from core.queue import make_celery
from core.settings import get_settings

settings = get_settings()
settings.ensure_dirs()
app = make_celery(settings)
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


import worker.tasks  # noqa: E402,F401  (registers the tasks on `app`)

"""Builders of valid rows and specs, so each test states only what it is about."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.db import Database
from core.jobs import queries
from core.jobs.schemas import JobCreate
from core.settings import Settings
from core.tables import Job
from migrations.upgrade import upgrade


def job_spec(**overrides: Any) -> JobCreate:
    """A small LeNet-on-digits training spec; keyword groups replace the defaults."""
    body: dict[str, Any] = {
        "experiment": "tests",
        "model": {"arch": "lenet"},
        "dataset": {"name": "digits"},
        "hyperparameters": {"epochs": 2, "batch_size": 64},
    }
    body.update(overrides)
    return JobCreate.model_validate(body)


def add_job(session: Session, **overrides: Any) -> Job:
    spec = job_spec(**overrides)
    return queries.create_job(session, spec=spec, queue="cpu")


def migrated(settings: Settings) -> Database:
    """A database for `settings` at the newest schema, with the directories the service writes."""
    settings.ensure_dirs()
    upgrade(settings.database_url)
    return Database(settings.database_url)

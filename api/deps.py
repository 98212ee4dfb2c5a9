"""FastAPI dependencies: the request's database session, settings and job queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.auth import OwnerDep
from api.serving import Serving
from core.ownership import scope_to_owner
from core.queue import JobQueue
from core.settings import Settings


def get_session(request: Request, owner: OwnerDep) -> Iterator[Session]:
    """A session for one request, seeing only the caller's rows when auth is on; handlers that
    write call `session.commit()` themselves."""
    with request.app.state.db.sessions() as session:
        yield scope_to_owner(session, owner)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_job_queue(request: Request) -> JobQueue:
    return request.app.state.job_queue


def get_serving(request: Request) -> Serving:
    return request.app.state.serving


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
ServingDep = Annotated[Serving, Depends(get_serving)]

MAX_OFFSET = 2**31 - 1  # far past any real row count, and within every database's integers

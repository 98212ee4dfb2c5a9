"""FastAPI dependencies: the request's database session, settings, job queue and pools.

A plain `def` handler takes `SessionDep` (it runs in the threadpool). An `async def` handler never
does: its database work goes through `DatabaseWorkDep`, in the threadpool with a session of its
own, and its CPU work through `CpuDep`; the event loop itself only waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.cpu_pool import CpuPool
from api.serving import Serving
from core.db import Database
from core.ownership import scope_to_owner
from core.queue import JobQueue
from core.settings import Settings

T = TypeVar("T")
Work = Callable[[Session], T]  # database work: runs in the threadpool, never on the loop


def get_session(request: Request, owner: OwnerDep) -> Iterator[Session]:
    """A session for one request, seeing only the caller's rows when auth is on; handlers that
    write call `session.commit()` themselves."""
    with request.app.state.db.sessions() as session:
        yield scope_to_owner(session, owner)


class DatabaseWork:
    """Database work of an `async def` handler: each call runs in the threadpool with a short
    session of its own (the caller's rows only), closed before the handler goes on, so the loop
    never waits on a query and no pooled connection is held across an await."""

    def __init__(self, db: Database, owner: str | None) -> None:
        self.db = db
        self.owner = owner

    async def __call__(self, work: Work[T]) -> T:
        return await run_in_threadpool(self._run, work)

    def _run(self, work: Work[T]) -> T:
        with self.db.sessions() as session:
            return work(scope_to_owner(session, self.owner))


# The dependencies below are `async def` only because they do nothing that blocks: a plain
# `def` dependency costs a trip through the threadpool on every request.
async def get_database_work(request: Request, owner: OwnerDep) -> DatabaseWork:
    return DatabaseWork(request.app.state.db, owner)


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_job_queue(request: Request) -> JobQueue:
    return request.app.state.job_queue  # type: ignore[no-any-return]


async def get_serving(request: Request) -> Serving:
    return request.app.state.serving  # type: ignore[no-any-return]


async def get_cpu_pool(request: Request) -> CpuPool:
    return request.app.state.cpu_pool  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
DatabaseWorkDep = Annotated[DatabaseWork, Depends(get_database_work)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
ServingDep = Annotated[Serving, Depends(get_serving)]
CpuDep = Annotated[CpuPool, Depends(get_cpu_pool)]

MAX_OFFSET = 2**31 - 1  # far past any real row count, and within every database's integers

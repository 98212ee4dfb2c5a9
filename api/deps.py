"""FastAPI dependencies: the request's database session, settings, job queue and pools.

A plain `def` handler takes `SessionDep` (it runs in the threadpool). An `async def` handler never
does: its database work goes through `DatabaseWorkDep`, in the threadpool with a session of its
own, and its CPU work through `CpuDep`; the event loop itself only waits.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.cpu_pool import CpuPool
from api.serving import Serving
from core.auth.ownership import scope_to_owner
from core.db import Database
from core.queue import JobQueue
from core.settings import Settings

T = TypeVar("T")
Work = Callable[[Session], T]  # database work: runs in the threadpool, never on the loop


def get_session(request: Request, owner: OwnerDep) -> Iterator[Session]:
    """A session for one request, seeing only the caller's rows when auth is on; handlers that
    write call `session.commit()` themselves."""
    with request.app.state.db.sessions() as session:
        yield scope_to_owner(session, owner)


class SessionRoute(APIRoute):
    """A route whose plain `def` handler gives its session back the moment it returns, in its
    own thread. FastAPI would close it only after the answer is serialised, another trip
    through the threadpool: under load, finished requests would hold their connections while
    queued behind new ones that hold threads and wait for a connection, until the pool's
    timeout. Every router with a handler that takes `SessionDep` uses it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = closing_sessions(endpoint)
        super().__init__(path, endpoint, **kwargs)


def closing_sessions(endpoint: Callable[..., T]) -> Callable[..., T]:
    """`endpoint`, closing every Session it was given once it returns (rows it loaded stay
    readable: sessions keep them after commit and close)."""

    @functools.wraps(endpoint)  # FastAPI reads the parameters through __wrapped__
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()

    return run


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

"""Database engine and sessions, one way for both processes.

SQLite (the embedded default) is shared by the API and the worker processes, so every connection
gets WAL mode and a busy timeout: readers never block the writer, and writers wait their turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_RETRY_S = 60.0
# Connections lent beyond the pool's size: for the predict path's own lookup threads, and a
# thread that holds a second session for a moment.
POOL_OVERFLOW = 4
T = TypeVar("T")
log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(database_url: str, *, pool_size: int = 5, pool_timeout_s: float = 30.0) -> Engine:
    """An engine for `database_url` whose pool keeps `pool_size` connections (and lends up to
    `POOL_OVERFLOW` more), waiting `pool_timeout_s` for one before raising
    `sqlalchemy.exc.TimeoutError`; SQLite connections get the pragmas above."""
    pool = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, "pool_timeout": pool_timeout_s}
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_pre_ping=True, **pool)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded rows readable after commit (responses are built after it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


class Database:
    """An engine and its session factory, built from one URL and passed around explicitly."""

    def __init__(
        self, database_url: str, *, pool_size: int = 5, pool_timeout_s: float = 30.0
    ) -> None:
        self.url = database_url
        self.engine = make_engine(database_url, pool_size=pool_size, pool_timeout_s=pool_timeout_s)
        self.sessions = make_session_factory(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on error."""
        with self.sessions.begin() as session:
            yield session

    def write(self, work: Callable[[Session], T], *, for_s: float = WRITE_RETRY_S) -> T:
        """`work(session)` in a transaction, tried again while the database is briefly away
        (a restart, a failover) for up to `for_s`: a training job rides out the gap instead of
        failing. `work` must be safe to repeat (upserts, state changes to a fixed value)."""
        delay, deadline = 0.1, time.monotonic() + for_s
        while True:
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as error:
                transient = isinstance(error, OperationalError) or error.connection_invalidated
                if not transient or time.monotonic() > deadline:
                    raise
                log.warning("database write failed (%s); trying again", error.orig)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def dispose(self) -> None:
        """Drop pooled connections (after a fork they belong to the parent)."""
        self.engine.dispose(close=False)

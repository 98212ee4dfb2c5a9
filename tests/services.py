"""Reaching the PostgreSQL and Redis that some tests need.

A test that needs them skips with the reason when they are unreachable, unless
D2L_REQUIRE_SERVICES=1 (set by .ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get(
    "D2L_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("D2L_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require(service: str, url: str, default_port: int) -> None:
    """Skip (or fail, when CI requires services) if `service` does not answer at `url`."""
    if _reachable(url, default_port):
        return
    reason = f"{service} is not reachable at {urlsplit(url).netloc}"
    if os.environ.get("D2L_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and D2L_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    require("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    name = f"d2l_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_redis_url() -> Iterator[str]:
    """A Redis URL on a database index emptied before and after the test."""
    require("Redis", REDIS_URL, 6379)
    import redis

    url = f"{REDIS_URL.rstrip('/')}/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()

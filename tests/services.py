"""Reaching the PostgreSQL and Redis that some tests need.

A test that needs them skips with the reason when they are unreachable, unless
D2L_REQUIRE_SERVICES=1 (set by .ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


def skip_or_fail(reason: str) -> None:
    """Skip a test whose outside requirement is missing, or fail it when CI requires them all."""
    if os.environ.get("D2L_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and D2L_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def require(service: str, url: str, default_port: int) -> None:
    """Skip (or fail, when CI requires services) if `service` does not answer at `url`."""
    if not _reachable(url, default_port):
        skip_or_fail(f"{service} is not reachable at {urlsplit(url).netloc}")


def require_chromium() -> str:
    """Headless Chromium's program (Debian's `chromium`), or skip (fail in CI) without it."""
    program = shutil.which("chromium") or shutil.which("chromium-browser")
    if program is None:
        skip_or_fail("needs Chromium (Debian: apt-get install chromium)")
    assert program is not None
    return program


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

    # A database index of our own, leased on database 0, so two test sessions on one Redis
    # (a developer's run beside CI's) never empty or consume each other's queues.
    leases = redis.Redis.from_url(f"{REDIS_URL.rstrip('/')}/0")
    token = uuid.uuid4().hex
    index = next(
        (i for i in range(1, 16) if leases.set(f"d2l-test-db:{i}", token, nx=True, ex=1800)),
        None,
    )
    if index is None:
        leases.close()
        pytest.fail("every Redis database 1-15 is leased by another test session")
    url = f"{REDIS_URL.rstrip('/')}/{index}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if leases.get(f"d2l-test-db:{index}") == token.encode():
            leases.delete(f"d2l-test-db:{index}")
        leases.close()


PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


class PrivatePostgres:
    """A throwaway PostgreSQL server (its own data directory and port) that a test may stop and
    start at will without disturbing the shared one."""

    def __init__(self, port: int) -> None:
        # Its own directory under /tmp: pytest's tmp_path is private to root, not to `postgres`.
        self._root = Path(tempfile.mkdtemp(prefix="d2l-pg-"))
        self.data, self.port = self._root / "pgdata", port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self._root, "postgres")
        self._run(str(PG_BIN[-1] / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self._root / "server.log")  # not our pipe: the server outlives pg_ctl
        self._run(
            str(PG_BIN[-1] / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(PG_BIN[-1] / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def private_postgres(port: int) -> Iterator[PrivatePostgres]:
    """A running PrivatePostgres, stopped afterwards; skips (or fails under
    D2L_REQUIRE_SERVICES=1) where PostgreSQL's server programs are not installed."""
    if not PG_BIN:
        skip_or_fail("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    server = PrivatePostgres(port)
    server.init()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(server._root, ignore_errors=True)

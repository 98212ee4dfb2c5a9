"""`d2l-service`: the one command that migrates, serves, and runs workers.

The API and the worker run as child processes started by module name (each its own process, as in
production), so this module imports neither; `up` supervises both and stops both when either ends
or on Ctrl-C / SIGTERM. A supervisor killed outright (SIGKILL, the OOM killer) takes them along: on
Linux each child asks the kernel for a SIGTERM when its parent dies, so the worker shuts down warm
(its jobs go back to the queue, its pool children stop with it) and the API frees its port.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from core.auth import tokens
from core.db import Database
from core.errors import ServiceError
from core.settings import get_settings
from d2l_client.commands import add_client_commands
from migrations.upgrade import upgrade

log = logging.getLogger("d2l-service")
SHUTDOWN_GRACE_S = 30
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def api_command(host: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def worker_command(celery_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app", "worker", *celery_args]


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGTERM when the process that started it dies (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing). A parent already gone before the call is caught too."""

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # died between fork and prctl: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def unique_worker_name(node: str) -> str:
    """A worker name of this start alone: two workers on one machine (two `up`s, a restarted
    one beside an orphan) never share one, so one's shutdown never reads as the other's."""
    return f"{node}@{socket.gethostname()}-{secrets.token_hex(3)}"


def names_itself(celery_args: Sequence[str]) -> bool:
    """Whether the worker's options give its name (`-n NAME`, `--hostname NAME`)."""
    return any(arg == "-n" or arg.startswith("--hostname") for arg in celery_args)


def migrate() -> None:
    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.database_url)


def supervise(children: dict[str, subprocess.Popen[bytes]]) -> int:
    """Wait until a child exits or we are told to stop, then stop the others; the exit code."""
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        log.info("received %s; stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                log.error("%s exited with code %s; stopping the service", name, child.returncode)
                exit_code, stopping = child.returncode or 1, True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def cmd_up(args: argparse.Namespace) -> int:
    migrate()
    settings = get_settings()
    log.info(
        "data directory %s; database %s; broker %s",
        settings.data_dir,
        settings.database_url.split("@")[-1],
        settings.broker_url.split("@")[-1],
    )
    worker_args = [
        "--loglevel",
        settings.log_level,
        "--concurrency",
        str(args.concurrency),
        "--hostname",
        unique_worker_name("embedded"),
    ]
    with_us = die_with_parent(os.getpid())
    children = {
        "worker": subprocess.Popen(worker_command(worker_args), preexec_fn=with_us),
        "api": subprocess.Popen(api_command(args.host, args.port), preexec_fn=with_us),
    }
    log.info("serving on http://%s:%d (Swagger UI at /docs)", args.host, args.port)
    return supervise(children)


def cmd_api(args: argparse.Namespace) -> int:
    if not args.no_migrate:
        migrate()
    command = api_command(args.host, args.port, args.workers)
    os.execv(command[0], command)


def cmd_worker(args: argparse.Namespace) -> int:
    celery_args = list(args.celery_args or ["--loglevel", get_settings().log_level])
    if not names_itself(celery_args):  # Celery's default, celery@HOST, is one per machine
        celery_args += ["--hostname", unique_worker_name("celery")]
    command = worker_command(celery_args)
    os.execv(command[0], command)


def cmd_migrate(_args: argparse.Namespace) -> int:
    migrate()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Tokens live in the database, so this runs where the database is reachable (a server)."""
    migrate()
    db = Database(get_settings().database_url)
    try:
        with db.transaction() as session:
            if args.token_command == "create":
                row, secret = tokens.create_token(session, owner=args.owner, name=args.name)
                print(f"token {row.prefix}... for {row.owner} (shown once):", file=sys.stderr)
                print(secret)  # alone on stdout: TOKEN=$(d2l-service token create --owner me)
            elif args.token_command == "list":
                for row in tokens.list_tokens(session):
                    state = "revoked" if row.revoked_at else "active"
                    print(f"{row.id}  {row.prefix}...  {row.owner}  {row.name}  {state}")
            else:
                row = tokens.revoke_token(session, token_id=args.token_id)
                print(f"revoked {row.prefix}... of {row.owner}")
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        db.engine.dispose()
    return 0


def add_token_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="create, list and revoke API tokens (D2L_AUTH=on)")
    token.set_defaults(handler=cmd_token)
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="a new token for an owner; prints it once")
    create.add_argument("--owner", required=True, help="who the token's jobs and models belong to")
    create.add_argument("--name", default="default", help="a label, e.g. the machine it is for")
    actions.add_parser("list", help="every token: id, prefix, owner, name, state")
    revoke = actions.add_parser("revoke", help="revoke a token by id or prefix")
    revoke.add_argument("token_id")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d2l-service", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="migrate, then run the API and a worker together")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--concurrency", type=int, default=1, help="jobs trained at once")
    up.set_defaults(handler=cmd_up)

    api = commands.add_parser("api", help="migrate, then run the HTTP API alone")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.add_argument("--no-migrate", action="store_true", help="skip the schema upgrade")
    api.set_defaults(handler=cmd_api)

    worker = commands.add_parser(
        "worker", help="run a Celery worker; other options go to celery (e.g. -Q cpu -c 2)"
    )
    worker.set_defaults(handler=cmd_worker)

    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(handler=cmd_migrate)
    add_token_commands(commands)
    add_client_commands(commands)  # train, jobs, follow, predict...: HTTP to a running service
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "worker":
        args.celery_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
    except BrokenPipeError:
        return reader_left()
    return code


def reader_left() -> int:
    """`d2l-service show JOB | head`: the reader closed the pipe. Stop quietly, as Python's
    signal docs advise: stdout points at /dev/null so the flush at exit cannot fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


if __name__ == "__main__":
    sys.exit(main())

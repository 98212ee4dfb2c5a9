"""The workers that report to this service: where jobs can run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep, SessionRoute, SettingsDep
from core import workers
from core.tables import utcnow

router = APIRouter(prefix="/v1/workers", tags=["workers"], route_class=SessionRoute)


class WorkerOut(BaseModel):
    hostname: str
    alive: bool
    queues: list[str]
    devices: list[dict[str, Any]]
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None


@router.get("", summary="Workers with their queues and devices (GPU model and memory)")
def list_workers(session: SessionDep, settings: SettingsDep) -> list[WorkerOut]:
    """Every worker that ever reported; `alive` while its heartbeat is younger than
    D2L_HEARTBEAT_TIMEOUT_S (after that the reaper takes its jobs back)."""
    now = utcnow()
    return [
        WorkerOut(
            hostname=worker.hostname,
            alive=workers.is_alive(worker, now=now, within_s=settings.heartbeat_timeout_s),
            queues=worker.queues,
            devices=worker.devices,
            started_at=worker.started_at,
            last_seen=worker.last_seen,
            stopped_at=worker.stopped_at,
        )
        for worker in workers.list_workers(session)
    ]

from datetime import timedelta

from fastapi.testclient import TestClient

from core.db import Database
from core.tables import Worker, utcnow
from core.workers import register_worker, touch_worker

DEVICES = [{"name": "cuda:0", "type": "cuda", "model": "H100", "memory_bytes": 80 * 2**30}]


def test_workers_are_listed_with_their_devices_and_liveness(
    client: TestClient, sqlite_db: Database
) -> None:
    with sqlite_db.transaction() as session:
        register_worker(session, hostname="gpu1@a", queues=["gpu", "cpu"], devices=DEVICES)
        register_worker(session, hostname="cpu1@b", queues=["cpu"], devices=[])
        register_worker(session, hostname="old@c", queues=["cpu"], devices=[])
    with sqlite_db.transaction() as session:
        touch_worker(session, hostname="cpu1@b", stopped=True)
        session.get(Worker, "old@c").last_seen = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
    workers = {w["hostname"]: w for w in client.get("/v1/workers").json()}
    assert workers["gpu1@a"]["alive"] and workers["gpu1@a"]["devices"][0]["model"] == "H100"
    assert workers["gpu1@a"]["queues"] == ["gpu", "cpu"]
    assert not workers["cpu1@b"]["alive"] and workers["cpu1@b"]["stopped_at"] is not None
    assert not workers["old@c"]["alive"]  # heartbeat went quiet

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from core.db import Database
from core.settings import Settings
from core.tables import Worker, utcnow
from core.workers import live_workers, register_worker, touch_worker
from tests.factories import migrated

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


def test_a_worker_is_alive_for_the_heartbeat_timeout_and_no_longer(settings: Settings) -> None:
    """The list, /metrics and admission (`live_workers`) take D2L_HEARTBEAT_TIMEOUT_S, the
    silence after which the reaper takes a worker's jobs back: one second either side of it."""
    config = settings.model_copy(update={"heartbeat_timeout_s": 5.0})
    db = migrated(config)
    with db.transaction() as session:
        for hostname in ("inside@a", "outside@b"):
            register_worker(session, hostname=hostname, queues=["cpu"], devices=[])
    with db.transaction() as session:
        now = utcnow()
        session.get(Worker, "inside@a").last_seen = now - timedelta(seconds=4)  # type: ignore[union-attr]
        session.get(Worker, "outside@b").last_seen = now - timedelta(seconds=6)  # type: ignore[union-attr]
    with db.sessions() as session:
        assert [w.hostname for w in live_workers(session, within_s=5.0)] == ["inside@a"]
    db.engine.dispose()
    with TestClient(create_app(config)) as client:
        listed = {w["hostname"]: w["alive"] for w in client.get("/v1/workers").json()}
        scraped = client.get("/metrics").text
    assert listed == {"inside@a": True, "outside@b": False}
    up = {
        sample.labels["worker"]: sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "d2l_worker_up"
    }
    assert up == {"inside@a": 1.0, "outside@b": 0.0}

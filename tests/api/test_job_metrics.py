"""GET /v1/jobs/{id}/metrics on a long run: filter by name, thin each curve, page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from core.db import Database
from core.tables import Metric
from tests.factories import add_job

EPOCHS = 2500  # x 4 series = 10,000 points


@pytest.fixture
def long_run(sqlite_db: Database) -> str:
    series = {
        ("train", "loss"): lambda epoch: 1 / epoch,
        ("train", "acc"): lambda epoch: epoch / EPOCHS,
        ("val", "acc"): lambda epoch: epoch / EPOCHS / 2,
        ("train", "grad_norm"): lambda epoch: 1.0,
    }
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
        rows = [
            {
                "job_id": job_id,
                "epoch": epoch,
                "step": epoch,
                "split": split,
                "name": name,
                "value": value(epoch),
            }
            for epoch in range(1, EPOCHS + 1)
            for (split, name), value in series.items()
        ]
        session.execute(insert(Metric), rows)
    return job_id


def test_every_point_by_default_and_names_filter(client: TestClient, long_run: str) -> None:
    everything = client.get(f"/v1/jobs/{long_run}/metrics")
    assert len(everything.json()) == 4 * EPOCHS
    assert everything.headers["x-total-count"] == str(4 * EPOCHS)

    named = client.get(f"/v1/jobs/{long_run}/metrics", params={"names": "val_acc, grad_norm"})
    keys = {(m["split"], m["name"]) for m in named.json()}
    assert keys == {("val", "acc"), ("train", "grad_norm")}
    by_name = client.get(f"/v1/jobs/{long_run}/metrics", params={"name": "acc"}).json()
    assert {m["split"] for m in by_name} == {"train", "val"}


def test_max_points_thins_each_curve_keeping_first_and_last(
    client: TestClient, long_run: str
) -> None:
    thinned = client.get(
        f"/v1/jobs/{long_run}/metrics", params={"names": "val_acc,train_loss", "max_points": 50}
    ).json()
    for split, name in (("val", "acc"), ("train", "loss")):
        epochs = [m["epoch"] for m in thinned if (m["split"], m["name"]) == (split, name)]
        assert len(epochs) == 50
        assert epochs[0] == 1 and epochs[-1] == EPOCHS and epochs == sorted(epochs)


def test_pages_are_contiguous_and_say_the_total(client: TestClient, long_run: str) -> None:
    url = f"/v1/jobs/{long_run}/metrics"
    first = client.get(url, params={"names": "val_acc", "limit": 1000})
    second = client.get(url, params={"names": "val_acc", "limit": 1000, "offset": 1000})
    assert first.headers["x-total-count"] == str(EPOCHS)
    epochs = [m["epoch"] for m in first.json() + second.json()]
    assert epochs == list(range(1, 2001))


def test_bad_parameters_are_refused(client: TestClient, long_run: str) -> None:
    url = f"/v1/jobs/{long_run}/metrics"
    assert client.get(url, params={"names": "val_acc,,x"}).status_code == 422
    assert client.get(url, params={"max_points": 1}).status_code == 422
    assert client.get(url, params={"limit": 0}).status_code == 422
    assert client.get("/v1/jobs/nope/metrics").status_code == 404


def test_reading_one_job_uses_the_metrics_index(sqlite_db: Database, long_run: str) -> None:
    """A 10k-point run is read through the (job_id, epoch, split, name) index, in its order."""
    with sqlite_db.sessions() as session:
        plan = session.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id, epoch, value FROM metrics WHERE job_id = :job "
                "ORDER BY epoch, split, name"
            ),
            {"job": long_run},
        ).all()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX" in detail and "TEMP B-TREE" not in detail


def test_names_are_bounded_by_the_query_setting(client: TestClient, long_run: str) -> None:
    url = f"/v1/jobs/{long_run}/metrics"
    many = client.get(url, params={"names": ",".join(f"m{i}" for i in range(21))})
    assert many.status_code == 422 and "D2L_QUERY_MAX_VALUES" in many.json()["detail"]
    repeated = client.get(url, params={"names": ",".join(["val_acc"] * 100)})
    assert repeated.status_code == 200 and repeated.json()

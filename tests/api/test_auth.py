"""D2L_AUTH=on: tokens are required, each owner sees only their own things, floods get 429."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.main import main as cli_main
from core.artifacts import open_artifact_store
from core.auth import tokens
from core.db import Database
from core.settings import Settings, get_settings
from migrations.upgrade import upgrade
from worker.runner import JobRunner

SMALL_JOB: dict[str, Any] = {
    "experiment": "alice-exp",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1, "batch_size": 64},
}


@dataclass
class Service:
    client: TestClient
    db: Database
    settings: Settings

    def token(self, owner: str) -> dict[str, str]:
        with self.db.transaction() as session:
            _, secret = tokens.create_token(session, owner=owner)
        return {"Authorization": f"Bearer {secret}"}

    def train(self, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        """Submit as the token's owner and run the job as a worker would; the finished job."""
        submitted = self.client.post("/v1/jobs", json=SMALL_JOB | overrides, headers=headers)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        JobRunner(
            db=self.db,
            store=open_artifact_store(self.settings),
            data_dir=self.settings.datasets_dir,
            worker_name="w",
        ).run(job_id)
        job: dict[str, Any] = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "succeeded", job["error"]
        return job


def make_service(data_dir: Path, **settings: Any) -> Iterator[Service]:
    config = Settings(data_dir=data_dir, auth=True, **settings)
    config.ensure_dirs()
    upgrade(config.database_url)
    db = Database(config.database_url)
    with TestClient(create_app(config)) as client:
        yield Service(client, db, config)
    db.engine.dispose()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from make_service(tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def alice(service: Service) -> dict[str, str]:
    return service.token("alice")


@pytest.fixture(scope="module")
def bob(service: Service) -> dict[str, str]:
    return service.token("bob")


@pytest.fixture(scope="module")
def alices_job(service: Service, alice: dict[str, str]) -> dict[str, Any]:
    return service.train(alice)


def test_health_readiness_and_docs_need_no_token(service: Service) -> None:
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert service.client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "path", ["/v1/jobs", "/v1/models", "/v1/datasets", "/v1/experiments", "/v1/recipes"]
)
def test_everything_else_needs_a_token(service: Service, path: str) -> None:
    answer = service.client.get(path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "d2l-service token create" in answer.json()["detail"]


def test_a_made_up_token_is_refused(service: Service) -> None:
    answer = service.client.get("/v1/jobs", headers={"Authorization": "Bearer d2l_madeup"})
    assert answer.status_code == 401
    assert "unknown or revoked" in answer.json()["detail"]


def test_predict_needs_a_token_too(service: Service, alices_job: dict[str, Any]) -> None:
    body = {"inputs": [[[0.0] * 8] * 8]}
    answer = service.client.post(f"/v1/models/{alices_job['model_id']}/predict", json=body)
    assert answer.status_code == 401


def test_owner_sees_and_uses_their_own_job_and_model(
    service: Service, alice: dict[str, str], alices_job: dict[str, Any]
) -> None:
    jobs = service.client.get("/v1/jobs", headers=alice).json()
    assert [job["id"] for job in jobs["items"]] == [alices_job["id"]]
    model_id = alices_job["model_id"]
    body = {"inputs": [[[0.0] * 8] * 8, [[16.0] * 8] * 8]}
    answer = service.client.post(f"/v1/models/{model_id}/predict", json=body, headers=alice)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2
    experiments = service.client.get("/v1/experiments", headers=alice).json()
    assert [e["name"] for e in experiments] == ["alice-exp"]


@pytest.mark.parametrize(
    "route",
    [
        "GET /v1/jobs/{job}",
        "GET /v1/jobs/{job}/metrics",
        "GET /v1/jobs/{job}/checkpoints",
        "GET /v1/jobs/{job}/logs",
        "GET /v1/jobs/{job}/curves.png",
        "GET /v1/jobs/{job}/events",
        "POST /v1/jobs/{job}/cancel",
        "GET /v1/models/{model}",
        "GET /v1/models/{model}/parameters",
        "GET /v1/models/{model}/state_dict",
        "GET /v1/models/{model}/export",
        "DELETE /v1/models/{model}",
        "POST /v1/models/{model}/predict",
        "GET /v1/experiments/alice-exp",
        "GET /v1/experiments/alice-exp/compare",
    ],
)
def test_another_owner_gets_404(
    service: Service, bob: dict[str, str], alices_job: dict[str, Any], route: str
) -> None:
    method, template = route.split()
    path = template.format(job=alices_job["id"], model=alices_job["model_id"])
    body = {"inputs": [[[0.0] * 8] * 8]} if path.endswith("/predict") else None
    answer = service.client.request(method, path, headers=bob, json=body)
    assert answer.status_code == 404, (route, answer.status_code, answer.text)


def test_another_owner_lists_nothing(
    service: Service, bob: dict[str, str], alices_job: dict[str, Any]
) -> None:
    assert service.client.get("/v1/jobs", headers=bob).json()["total"] == 0
    assert service.client.get("/v1/models", headers=bob).json()["total"] == 0
    assert service.client.get("/v1/experiments", headers=bob).json() == []


def test_another_owner_cannot_fine_tune_from_a_job_they_cannot_see(
    service: Service, bob: dict[str, str], alices_job: dict[str, Any]
) -> None:
    body = SMALL_JOB | {"kind": "finetune", "finetune": {"source": {"job_id": alices_job["id"]}}}
    answer = service.client.post("/v1/jobs", json=body, headers=bob)
    assert answer.status_code == 422
    assert alices_job["id"] in answer.json()["detail"]


def test_uploaded_datasets_belong_to_their_owner(
    service: Service, alice: dict[str, str], bob: dict[str, str]
) -> None:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 4)
    files = {"file": ("bobs.npz", buffer.getvalue(), "application/octet-stream")}
    uploaded = service.client.post("/v1/datasets", files=files, headers=bob)
    assert uploaded.status_code == 201, uploaded.text
    dataset_id = uploaded.json()["id"]
    assert service.client.get(f"/v1/datasets/{dataset_id}", headers=bob).status_code == 200
    assert service.client.get(f"/v1/datasets/{dataset_id}", headers=alice).status_code == 404
    listed = service.client.get("/v1/datasets", headers=alice).json()
    assert dataset_id not in [d["name"] for d in listed] + [d.get("id") for d in listed]
    body = SMALL_JOB | {"dataset": {"name": dataset_id}}
    refused = service.client.post("/v1/jobs", json=body, headers=alice)
    assert refused.status_code == 422
    assert "no uploaded dataset" in refused.json()["detail"]
    deleted = service.client.delete(f"/v1/datasets/{dataset_id}", headers=alice)
    assert deleted.status_code == 404
    assert service.client.get(f"/v1/datasets/{dataset_id}", headers=bob).status_code == 200


def test_an_alias_name_belongs_to_the_owner_who_used_it_first(
    service: Service, alice: dict[str, str], bob: dict[str, str], alices_job: dict[str, Any]
) -> None:
    named = service.client.post(
        f"/v1/models/{alices_job['model_id']}/alias", json={"name": "digits-mlp"}, headers=alice
    )
    assert named.status_code == 200, named.text
    assert service.client.get("/v1/models/digits-mlp:latest", headers=bob).status_code == 404
    bobs_job = service.train(bob, experiment="bob-exp")
    taken = service.client.post(
        f"/v1/models/{bobs_job['model_id']}/alias", json={"name": "digits-mlp"}, headers=bob
    )
    assert taken.status_code == 409
    assert "another owner" in taken.json()["detail"]
    mine = service.client.get("/v1/models/digits-mlp:latest", headers=alice).json()
    assert mine["id"] == alices_job["model_id"]


def test_a_revoked_token_stops_working(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.auth.TOKEN_TTL_S", 0.0)
    with service.db.transaction() as session:
        row, secret = tokens.create_token(session, owner="carol")
    headers = {"Authorization": f"Bearer {secret}"}
    assert service.client.get("/v1/jobs", headers=headers).status_code == 200
    with service.db.transaction() as session:
        tokens.revoke_token(session, token_id=row.id)
    assert service.client.get("/v1/jobs", headers=headers).status_code == 401


def test_the_cli_creates_a_token_the_api_accepts(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("D2L_DATA_DIR", str(service.settings.data_dir))
    get_settings.cache_clear()
    try:
        assert cli_main(["token", "create", "--owner", "dave", "--name", "laptop"]) == 0
        secret = capsys.readouterr().out.strip()
        assert cli_main(["token", "list"]) == 0
        listing = capsys.readouterr().out
        assert cli_main(["token", "create", "--owner", "../etc"]) == 2
        assert "owner" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
    assert secret.startswith("d2l_") and "dave" in listing and "laptop" in listing
    assert secret not in listing  # only the prefix is kept
    answer = service.client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200


def test_submissions_over_the_rate_get_429_with_retry_after(tmp_path: Path) -> None:
    for service in make_service(tmp_path, submit_rate_per_minute=2, max_queued_per_owner=0):
        erin, frank = service.token("erin"), service.token("frank")
        for _ in range(2):
            assert service.client.post("/v1/jobs", json=SMALL_JOB, headers=erin).status_code == 202
        refused = service.client.post("/v1/jobs", json=SMALL_JOB, headers=erin)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "D2L_SUBMIT_RATE_PER_MINUTE" in refused.json()["detail"]
        assert service.client.post("/v1/jobs", json=SMALL_JOB, headers=frank).status_code == 202
        assert service.client.get("/v1/jobs", headers=erin).json()["total"] == 2


def test_queued_jobs_per_owner_are_capped(tmp_path: Path) -> None:
    for service in make_service(tmp_path, submit_rate_per_minute=0, max_queued_per_owner=1):
        gina = service.token("gina")
        first = service.client.post("/v1/jobs", json=SMALL_JOB, headers=gina)
        assert first.status_code == 202
        refused = service.client.post("/v1/jobs", json=SMALL_JOB, headers=gina)
        assert refused.status_code == 429
        assert "D2L_MAX_QUEUED_PER_OWNER" in refused.json()["detail"]
        cancelled = service.client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=gina)
        assert cancelled.status_code == 202
        assert service.client.post("/v1/jobs", json=SMALL_JOB, headers=gina).status_code == 202


def test_the_web_page_token_cookie_reads_but_never_writes(
    service: Service, alices_job: dict[str, Any]
) -> None:
    with service.db.transaction() as session:
        _, secret = tokens.create_token(session, owner="alice")
    page = service.client.get("/ui/common.js")  # the page's script that asks for a token
    assert page.status_code == 200 and "d2l_token=" in page.text
    service.client.cookies.set("d2l_token", secret)  # as the page's browser would send it
    try:
        read = service.client.get(f"/v1/jobs/{alices_job['id']}")
        cancel = service.client.post(f"/v1/jobs/{alices_job['id']}/cancel")
    finally:
        service.client.cookies.clear()
    assert read.status_code == 200
    assert cancel.status_code == 401

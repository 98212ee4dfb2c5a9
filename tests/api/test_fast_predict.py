"""The predict hot path (api/fast_predict.py) answers as the documented route would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.fast_predict import PredictFastPath
from core.datasets.digits import load_digits_raw
from tests.api.conftest import Trained


@pytest.fixture
def client(trained: Trained) -> TestClient:
    return trained.client


def test_other_requests_pass_through_untouched() -> None:
    seen: list[str] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"{scope['method']} {scope['path']}")

    layer = PredictFastPath(downstream)
    for method, path in [
        ("GET", "/v1/models/abc/predict"),
        ("POST", "/v1/models/abc/predict/images"),
        ("POST", "/v1/models/abc/predicts"),
        ("POST", "/v1/jobs"),
    ]:
        scope = {"type": "http", "method": method, "path": path, "headers": []}
        asyncio.run(layer(scope, None, None))
    assert len(seen) == 4


def test_predictions_are_counted_under_the_routes_template(
    client: TestClient, trained: Trained
) -> None:
    sample = load_digits_raw().inputs[0].tolist()
    assert client.post(f"/v1/models/{trained.model_id}/predict", json={"inputs": sample}).is_success
    metrics = client.get("/metrics").text
    assert 'route="/v1/models/{model_id}/predict",status="200"' in metrics
    assert trained.model_id not in metrics


def test_errors_are_answered_by_the_apps_handlers(client: TestClient, trained: Trained) -> None:
    missing = client.post("/v1/models/nope:latest/predict", json={"inputs": [[0] * 8] * 8})
    assert missing.status_code == 404 and "no model" in missing.json()["detail"]
    shape = client.post(f"/v1/models/{trained.model_id}/predict", json={"inputs": [[1, 2]]})
    assert shape.status_code == 422 and "[8, 8]" in shape.json()["detail"]
    invalid = client.post(
        f"/v1/models/{trained.model_id}/predict",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"][0] == "body"


def test_the_documented_route_still_describes_it(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/models/{model_id}/predict"]
    assert "requestBody" in operation["post"]

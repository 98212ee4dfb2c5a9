"""Path-traversal ids and their encoded variants on every `{id}` route: a 4xx, and no file whose
name came from the client is ever opened."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

MARKER = "d2lmarker"
HOSTILE = [
    f"..%2F..%2F{MARKER}",
    f"%2e%2e%2f%2e%2e%2f{MARKER}",
    f"..%5C..%5C{MARKER}",
    f"{MARKER}%00.pt",
    f"%252e%252e%252f{MARKER}",
    f"....%2F%2F{MARKER}",
    f"{MARKER}" + "a" * 300,
    "..",
]
opened: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes) and MARKER in str(args[0]):
        opened.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records marked paths


def id_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every operation with a path parameter, from the OpenAPI
    document (so a route added later is covered without touching this test)."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), template)
        for template, operations in paths.items()
        if "{" in template
        for method in operations
    ]


def test_every_id_route_answers_hostile_ids_with_a_4xx_and_opens_nothing(
    client: TestClient,
) -> None:
    routes = id_routes(client)
    assert len(routes) >= 10  # jobs, models, datasets, checkpoints, ...
    failures = []
    for method, template in routes:
        for value in HOSTILE:
            url = re.sub(r"\{[^}]+\}", value, template)
            answer = client.request(method, url)
            if not 400 <= answer.status_code < 500:
                failures.append(f"{method} {url}: {answer.status_code}")
    assert failures == []
    assert opened == []


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_dataset_id_is_not_a_path(client: TestClient, value: str) -> None:
    body = {"model": {"arch": "lenet"}, "dataset": {"name": value.replace("%2F", "/")}}
    assert client.post("/v1/jobs", json=body).status_code == 422
    assert opened == []

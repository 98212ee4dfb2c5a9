"""Path-traversal ids, their encoded variants and NUL bytes on every `{id}` route, and NUL bytes
in every string query parameter: a 4xx on SQLite and on PostgreSQL (where a NUL in a text
parameter is a database error), and no file whose name came from the client is ever opened."""

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
    f"%00{MARKER}",
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


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every documented operation (so a route added
    later is covered without touching this test)."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), template, operation)
        for template, methods in paths.items()
        for method, operation in methods.items()
    ]


def test_every_id_route_answers_hostile_ids_with_a_4xx_and_opens_nothing(
    any_db_client: TestClient,
) -> None:
    routes = [(m, t) for m, t, _ in operations(any_db_client) if "{" in t]
    assert len(routes) >= 10  # jobs, models, datasets, checkpoints, ...
    failures = []
    for method, template in routes:
        for value in HOSTILE:
            url = re.sub(r"\{[^}]+\}", value, template)
            answer = any_db_client.request(method, url)
            if not 400 <= answer.status_code < 500:
                failures.append(f"{method} {url}: {answer.status_code}")
    assert failures == []
    assert opened == []


def test_a_nul_in_any_query_parameter_is_a_4xx(any_db_client: TestClient) -> None:
    failures, tried = [], 0
    for method, template, operation in operations(any_db_client):
        url = re.sub(r"\{[^}]+\}", "0123abcd", template)
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            tried += 1
            answer = any_db_client.request(method, url, params={parameter["name"]: "a\x00b"})
            if not 400 <= answer.status_code < 500:
                failures.append(f"{method} {url}?{parameter['name']}: {answer.status_code}")
    assert tried >= 10  # experiment, parent, name, names, metric, arch, ...
    assert failures == []


def test_a_nul_in_a_job_filter_is_refused_naming_it(any_db_client: TestClient) -> None:
    answer = any_db_client.get("/v1/jobs", params={"experiment": "lenet\x00"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "experiment"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_dataset_id_is_not_a_path(client: TestClient, value: str) -> None:
    body = {"model": {"arch": "lenet"}, "dataset": {"name": value.replace("%2F", "/")}}
    assert client.post("/v1/jobs", json=body).status_code == 422
    assert opened == []

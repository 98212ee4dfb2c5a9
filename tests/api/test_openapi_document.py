"""The OpenAPI document says what validation does: every integer a request carries is bounded
there, no URL parameter or form field claims it can be `null`, every string in a URL has its
pattern, and a method a path lacks is a 405 whose `Allow` lists the methods it has.

And it is a contract a client generator can trust: operation ids are the route functions'
names, a file is declared only as its media type, every JSON answer has its schema, a token is
asked for exactly when auth is on, and the examples are real data."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import api.routes
from api.app import create_app
from core.datasets.digits import load_digits_raw
from core.settings import Settings
from tests.factories import migrated

Node = dict[str, Any]


def resolve(document: Node, schema: Node) -> Node:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def walk(
    document: Node, schema: Any, where: str, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, Node]]:
    """(where, node) of every schema node under `schema`, following $refs once per path."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
        schema = resolve(document, schema)
    yield where, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, branch in enumerate(schema.get(key, [])):
            yield from walk(document, branch, f"{where}", seen)
    for name, child in schema.get("properties", {}).items():
        yield from walk(document, child, f"{where}.{name}", seen)
    for child in schema.get("patternProperties", {}).values():
        yield from walk(document, child, f"{where}.*", seen)
    for key in ("items", "additionalProperties"):
        yield from walk(document, schema.get(key), f"{where}[]", seen)


def request_schemas(document: Node) -> Iterator[tuple[str, str, Node]]:
    """(operation, location, schema) of every parameter and request body."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield label, f"{parameter['in']} {parameter['name']}", parameter["schema"]
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                yield label, media_type, content["schema"]


def test_every_integer_a_request_carries_is_bounded_in_the_schema(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    unbounded = sorted(
        {
            f"{label} {location}{where}"
            for label, location, schema in request_schemas(document)
            for where, node in walk(document, schema, "")
            if node.get("type") == "integer"
            and not {"const", "enum"} & set(node)
            and not (
                {"minimum", "exclusiveMinimum"} & set(node)
                and {"maximum", "exclusiveMaximum"} & set(node)
            )
        }
    )
    assert unbounded == []


def test_no_url_parameter_header_or_form_field_claims_null(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    nullable = []
    for label, location, schema in request_schemas(document):
        if location == "application/json":
            continue  # JSON has null
        top = resolve(document, schema)
        fields = top.get("properties", {"": top}) if location.startswith("multipart") else {"": top}
        for name, field in fields.items():
            if {"type": "null"} in field.get("anyOf", []):
                nullable.append(f"{label} {location} {name}")
    assert nullable == []


def test_every_string_in_a_url_has_its_pattern(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    loose = [
        f"{label} {location}"
        for label, location, schema in request_schemas(document)
        if location.split()[0] in ("path", "query", "header")
        for _, node in walk(document, schema, "")
        if node.get("type") == "string" and not {"pattern", "enum", "const"} & set(node)
    ]
    assert loose == []


def test_a_method_a_path_lacks_is_a_405_listing_those_it_has(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    wrong = []
    for template, operations in paths.items():
        documented = {method.upper() for method in operations}
        missing = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        answer = client.request(missing, re.sub(r"\{[^}]+\}", "0123abcd", template))
        allowed = {m.strip() for m in answer.headers.get("allow", "").split(",")} - {"HEAD"}
        if answer.status_code != 405 or allowed != documented:
            wrong.append(f"{missing} {template}: {answer.status_code} Allow: {allowed}")
    assert wrong == []


def responses(document: Node) -> Iterator[tuple[str, str, Node]]:
    """(operation, status, response) of every documented answer."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                yield f"{method.upper()} {path}", code, response


def route_table() -> Iterator[APIRoute]:
    """Every route of every router in api/routes/ (one module per resource)."""
    for module_info in pkgutil.iter_modules(api.routes.__path__):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            yield from (route for route in router.routes if isinstance(route, APIRoute))


def test_operation_ids_are_the_route_functions_names_and_unique(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    documented = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    functions = {
        f"{method} {route.path}": route.endpoint.__name__
        for route in route_table()
        if route.include_in_schema
        for method in route.methods
    }
    assert documented == functions
    assert documented["GET /v1/jobs/{job_id}"] == "get_job"
    assert documented["POST /v1/models/{model_id}/predict"] == "predict"
    repeated = [name for name, count in Counter(documented.values()).items() if count > 1]
    assert repeated == []


def test_files_are_declared_only_as_their_media_type(client: TestClient) -> None:
    """A PNG declared as JSON first made a generated client parse the picture as JSON."""
    document = client.get("/openapi.json").json()
    success = {
        label: {
            media_type: content["schema"] for media_type, content in response["content"].items()
        }
        for label, code, response in responses(document)
        if code == "200" and "content" in response
    }
    binary = {"type": "string", "format": "binary"}
    files = {label: "image/png" for label in success if label.endswith(".png")} | {
        "GET /v1/models/{model_id}/export": "application/octet-stream",
        "GET /v1/models/{model_id}/state_dict": "application/octet-stream",
    }
    assert len(files) >= 5
    assert {label: success[label] for label in files} == {
        label: {media_type: binary} for label, media_type in files.items()
    }
    text = {
        "GET /v1/jobs/{job_id}/events": "text/event-stream",
        "GET /v1/jobs/{job_id}/logs": "text/plain",
        "GET /metrics": "text/plain",
    }
    assert {label: list(success[label]) for label in text} == {
        label: [media_type] for label, media_type in text.items()
    }


def test_every_answer_with_a_body_has_its_schema(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    untyped = [
        f"{label} {code} {media_type}"
        for label, code, response in responses(document)
        for media_type, content in response.get("content", {}).items()
        if not content.get("schema")
    ]
    assert untyped == []
    wanted = {"/readyz": "Readiness", "/v1/architectures/{name}": "NetOut"}
    for path, name in wanted.items():
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert schema["schema"] == {"$ref": f"#/components/schemas/{name}"}
    parameters = document["paths"]["/v1/models/{model_id}/parameters"]["get"]["responses"]["200"]
    branches = parameters["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/TensorValues"} in branches


def test_the_predict_body_is_a_named_schema_whose_example_is_a_real_digit(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/models/{model_id}/predict"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]
    assert reference == {"$ref": "#/components/schemas/PredictRequest"}
    example = resolve(document, reference)["examples"][0]["inputs"]
    digits = load_digits_raw().inputs
    assert example in digits.int().tolist()
    assert len({tuple(row) for row in example}) > 1  # not one row repeated


def test_no_integer_const_that_generated_code_could_not_compile(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    consts = [
        f"{name}{where}"
        for name, component in document["components"]["schemas"].items()
        for where, node in walk(document, component, "")
        if isinstance(node.get("const"), int | float) and not isinstance(node["const"], bool)
    ]
    assert consts == []
    version = document["components"]["schemas"]["JobCreate"]["properties"]["schema_version"]
    assert version["enum"] == [1]


def test_with_auth_off_no_operation_asks_for_a_token(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    asking = [label for label, operation in all_operations(document) if "security" in operation]
    assert asking == []
    assert "securitySchemes" not in document.get("components", {})


def test_with_auth_on_every_operation_but_the_open_ones_needs_the_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth=True)
    migrated(settings).engine.dispose()
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
        open_ones = []
        for label, operation in all_operations(document):
            if operation.get("security") != [{"HTTPBearer": []}]:
                open_ones.append(operation["operationId"])
        assert sorted(open_ones) == ["healthz", "index", "readyz"]
        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        unauthenticated = client.post("/v1/models/0123abcd/predict", json={"inputs": [[0] * 8]})
        assert unauthenticated.status_code == 401  # what predict's `security` says


def all_operations(document: Node) -> Iterator[tuple[str, Node]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation

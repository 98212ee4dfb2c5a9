"""The OpenAPI document says what validation does: every integer a request carries is bounded
there, no URL parameter or form field claims it can be `null`, every string in a URL has its
pattern, and a method a path lacks is a 405 whose `Allow` lists the methods it has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

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

"""The OpenAPI document as a contract that client generators and fuzzers can trust, corrected
where FastAPI's would promise what validation does not do.

- Each operation's id is its route function's name (`get_job`, `predict`), checked unique: a
  generated client's functions are then named as the service's are.
- Errors are documented as the JSON they are, also on routes whose success is a PNG, plain
  text or an event stream (FastAPI would give their errors that media type).
- A URL parameter, a header or a form field cannot be JSON `null`: left out, it takes its
  default. FastAPI writes `anyOf: [T, null]` for an optional one, which tells a client that the
  text `null` is valid; it is not, so the `null` branch is dropped there (JSON bodies keep it).
- A numeric `const` (a body's `schema_version: 1`) is written as the one-value `enum` it
  equals: openapi-python-client turns a numeric const into code that does not compile.
- A component that is one of several inline objects (ModelSpec: one per architecture) gets
  each as a component of its own (ModelSpecLenet): openapi-python-client names inline variants
  twice, and drops them as duplicates.
- With auth off no operation asks for a token (FastAPI would mark every one that reads the
  caller as needing it); with auth on, every operation that checks the token says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

NOT_JSON = ("path", "query", "header", "cookie")
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
JSON = "application/json"
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorOut"}
BINARY = {"type": "string", "format": "binary"}
# Bodies that routes parse themselves (the predict hot path), by component name: see json_body.
BODY_MODELS: dict[str, type[BaseModel]] = {}
TOKEN_REQUIRED: list[dict[str, list[str]]] = [{"HTTPBearer": []}]


def operation_id(route: APIRoute) -> str:
    """The route function's name (FastAPI's `generate_unique_id_function`)."""
    return route.name


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route that reads its JSON body itself: the body documented as
    `model`, by reference to a named component, as FastAPI documents the bodies it parses."""
    BODY_MODELS[model.__name__] = model
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {JSON: {"schema": reference}}}}


def binary_content(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses` of a route whose success is a file: that media type only (with
    `response_class=Response`, FastAPI adds no JSON of its own)."""
    return {200: {"description": description, "content": {media_type: {"schema": BINARY}}}}


def text_content(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses` of a route whose success is text of `media_type` (logs, metrics, events)."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {200: {"description": description, "content": content}}


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(METHOD path, operation) of every operation."""
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def check_unique_ids(schema: dict[str, Any]) -> None:
    """Two route functions of one name would give a generated client one function for both."""
    counts = Counter(operation["operationId"] for _, operation in operations(schema))
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise RuntimeError(f"route functions share a name (an operation id): {repeated}")


def body_components(schema: dict[str, Any]) -> None:
    """The components of the bodies routes parse themselves (and of the models they hold)."""
    if not BODY_MODELS:
        return
    _, definitions = models_json_schema(
        [(model, "validation") for model in BODY_MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [T, {"type": "null"}]` -> T (keeping the title, description and default)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == len(branches):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", 0) is None:
        del rest["default"]
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def error_content(schema: dict[str, Any]) -> None:
    """Every error as JSON: ErrorOut, or the model a route declared for it (GET /readyz's 503
    is its readiness report)."""
    for _, operation in operations(schema):
        for code, response in operation.get("responses", {}).items():
            if code[0] in "45":
                declared = [
                    content["schema"]
                    for content in response.get("content", {}).values()
                    if content.get("schema") not in (None, ERROR_SCHEMA)
                ]
                response["content"] = {JSON: {"schema": declared[0] if declared else ERROR_SCHEMA}}


def form_schema_names(schema: dict[str, Any]) -> set[str]:
    """Components that are form bodies."""
    names = set()
    for _, operation in operations(schema):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type in FORMS:
            ref = content.get(media_type, {}).get("schema", {}).get("$ref", "")
            if ref:
                names.add(ref.rsplit("/", 1)[-1])
    return names


def no_text_nulls(schema: dict[str, Any]) -> None:
    for _, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") in NOT_JSON:
                parameter["schema"] = without_null(parameter["schema"])
    components = schema.get("components", {}).get("schemas", {})
    for name in form_schema_names(schema):
        properties = components[name].get("properties", {})
        for field, field_schema in properties.items():
            properties[field] = without_null(field_schema)


def numeric_consts_as_enums(node: Any) -> None:
    """`{"const": 1}` -> `{"enum": [1]}` everywhere under `node` (the same promise)."""
    if isinstance(node, dict):
        value = node.get("const")
        if isinstance(value, int | float) and not isinstance(value, bool):
            node["enum"] = [node.pop("const")]
        for child in node.values():
            numeric_consts_as_enums(child)
    elif isinstance(node, list):
        for child in node:
            numeric_consts_as_enums(child)


def named_variants(schema: dict[str, Any]) -> None:
    """Each inline object variant of a component's `oneOf`, as a component named by its title."""
    components = schema.get("components", {}).get("schemas", {})
    for name, component in list(components.items()):
        variants = component.get("oneOf", [])
        if not variants or not all(
            variant.get("type") == "object" and "title" in variant for variant in variants
        ):
            continue
        references = []
        for variant in variants:
            title = "".join(part.capitalize() for part in variant["title"].split("_"))
            components[f"{name}{title}"] = variant
            references.append({"$ref": f"#/components/schemas/{name}{title}"})
        component["oneOf"] = references


def token_requirements(schema: dict[str, Any], *, auth: bool) -> None:
    """Auth off: no operation needs a token, and there is no scheme to offer. Auth on: as
    declared (the routes that check the token: `Security(BEARER)`, or the predict path's own
    `security`)."""
    if auth:
        return
    for _, operation in operations(schema):
        operation.pop("security", None)
    schema.get("components", {}).pop("securitySchemes", None)


def install_openapi(app: FastAPI, *, auth: bool) -> None:
    """Build the document once, corrected as the module docstring says."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        check_unique_ids(schema)
        body_components(schema)
        error_content(schema)
        no_text_nulls(schema)
        numeric_consts_as_enums(schema)
        named_variants(schema)
        token_requirements(schema, auth=auth)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

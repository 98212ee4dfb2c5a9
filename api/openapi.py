"""The OpenAPI document, corrected where FastAPI's would promise what validation does not do.

- Errors are documented as the JSON they are, also on routes whose success is a PNG, plain
  text or an event stream (FastAPI would give their errors that media type).
- A URL parameter, a header or a form field cannot be JSON `null`: left out, it takes its
  default. FastAPI writes `anyOf: [T, null]` for an optional one, which tells a client that the
  text `null` is valid; it is not, so the `null` branch is dropped there (JSON bodies keep it).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

NOT_JSON = ("path", "query", "header", "cookie")
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


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
    error = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45":
                    response["content"] = {"application/json": error}


def form_schema_names(schema: dict[str, Any]) -> set[str]:
    """Components that are form bodies."""
    names = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type in FORMS:
                ref = content.get(media_type, {}).get("schema", {}).get("$ref", "")
                if ref:
                    names.add(ref.rsplit("/", 1)[-1])
    return names


def no_text_nulls(schema: dict[str, Any]) -> None:
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in NOT_JSON:
                    parameter["schema"] = without_null(parameter["schema"])
    components = schema.get("components", {}).get("schemas", {})
    for name in form_schema_names(schema):
        properties = components[name].get("properties", {})
        for field, field_schema in properties.items():
            properties[field] = without_null(field_schema)


def install_openapi(app: FastAPI) -> None:
    """Build the document once, corrected as the module docstring says."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        error_content(schema)
        no_text_nulls(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

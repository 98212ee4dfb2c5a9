"""Schemathesis against /openapi.json: every operation, a bounded number of generated requests,
on PostgreSQL with auth on (a real token) and every check Schemathesis has: no 5xx, every answer
matches its documented status, media type, headers and schema, a request the schema calls valid
is accepted and one it calls invalid is refused.

One check is stated precisely instead of taken whole: a request the schema calls valid may
still be refused with a 422 by a rule the schema cannot express (the model must fit the
dataset, a fine-tune's source must have succeeded), but only on an operation whose OpenAPI 422
lists its rules, and only by such a rule: never by a type, bound, pattern or required field the
schema could have said (pydantic's error types for those are anything but `RULES`)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.errors import GENERIC_422
from core.auth import tokens
from core.db import Database
from core.settings import Settings
from migrations.upgrade import upgrade
from tests.conftest import RecordingQueue
from tests.services import fresh_postgres_database

# Per operation and phase: the test takes under a minute on 2 cores. The draws are derandomized,
# so a run is repeatable; to explore, raise this (150 finds nothing either) or drop derandomize.
MAX_EXAMPLES = 10
# Error types of rules no JSON Schema can state: a validator's own rule, and a NUL inside free
# JSON (a builder option's value, a sweep choice) that no database could store.
RULES = {"value_error", "string_nul"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    """An app on a fresh PostgreSQL database with auth on, and one owner's token."""
    with fresh_postgres_database() as url:
        upgrade(url)
        db = Database(url)
        with db.transaction() as session:
            _, secret = tokens.create_token(session, owner="fuzz")
        db.engine.dispose()
        data_dir = Path(tmp_path_factory.mktemp("fuzz"))
        application = create_app(Settings(data_dir=data_dir, database_url=url, auth=True))
        application.state.job_queue = RecordingQueue()
        yield application, secret
        application.state.db.engine.dispose()


def operations_with_rules(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path) of each operation whose 422 documents rules of its own."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        if operation["responses"].get("422", {}).get("description", GENERIC_422) != GENERIC_422
    }


def refused_by_a_rule(detail: Any) -> bool:
    """A handler's sentence, or validation errors that are all custom rules."""
    if isinstance(detail, str):
        return True
    return isinstance(detail, list) and all(error.get("type") in RULES for error in detail)


schema = schemathesis.pytest.from_fixture("openapi")


@pytest.fixture(scope="module")
def openapi(service: tuple[FastAPI, str]):  # type: ignore[no-untyped-def]
    application, secret = service
    loaded = schemathesis.openapi.from_asgi("/openapi.json", application)
    loaded.config.update(headers={"Authorization": f"Bearer {secret}"})
    return loaded


@pytest.fixture(scope="module")
def checks(service: tuple[FastAPI, str]) -> list[Any]:
    """Every Schemathesis check, with positive data acceptance as the module docstring says."""
    with_rules = operations_with_rules(service[0])

    def valid_data_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
        try:
            return positive_data_acceptance(ctx, response, case)
        except RejectedPositiveData:
            documented = (case.operation.method.upper(), case.operation.path) in with_rules
            if response.status_code == 422 and documented:
                if refused_by_a_rule(response.json()["detail"]):
                    return None
            raise

    stock = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]
    return [*stock, valid_data_is_accepted]


@pytest.mark.slow
@pytest.mark.services
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, checks) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=checks)

"""Schemathesis against /openapi.json: every operation, a bounded number of generated requests;
no 5xx, and every answer matches its documented status, media type and schema."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.migrate import upgrade
from core.settings import Settings
from tests.conftest import RecordingQueue

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    service = Settings(data_dir=Path(tmp_path_factory.mktemp("fuzz")))
    service.ensure_dirs()
    upgrade(service.database_url)
    application = create_app(service)
    application.state.job_queue = RecordingQueue()
    return application


schema = schemathesis.pytest.from_fixture("openapi")


@pytest.fixture(scope="module")
def openapi(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=CHECKS)

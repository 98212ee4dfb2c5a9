"""A client generated from the live `/openapi.json` by openapi-python-client (warnings are
failures) trains a net, follows it, predicts, draws its curves and exports it, against the real
app behind uvicorn with a worker thread: the document is a contract a tool can build on."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import onnx
import pytest

from core.datasets.digits import load_digits_raw
from tests.client.live_service import running_service

PACKAGE = "d2l_generated_client"
# No formatter run (the code must compile as generated); PNGs as files, as the tool documents.
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
"""
FINISHED = {"succeeded", "failed", "cancelled"}
POLL_S = 0.2
MAX_POLLS = 1500  # 5 minutes: a LeNet on digits takes seconds
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app's URL; each submitted job trains in a thread with the real runner."""
    with running_service(tmp_path_factory.mktemp("generated-client")) as live:
        yield live.url


@pytest.fixture(scope="module")
def generated(service: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the service's document, imported."""
    root = tmp_path_factory.mktemp("client-package")
    config = root / "generator.yaml"
    config.write_text(GENERATOR_CONFIG)
    command = [
        *(sys.executable, "-m", "openapi_python_client", "generate"),
        *("--url", f"{service}/openapi.json", "--config", str(config), "--meta", "none"),
        *("--output-path", str(root / PACKAGE), "--fail-on-warning"),
    ]
    made = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    compile_strictly(root / PACKAGE)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def compile_strictly(package: Path) -> None:
    """Every generated module compiles with warnings as errors (`x != 1and` would not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for source in sorted(package.rglob("*.py")):
            compile(source.read_text(), str(source), "exec")


def operation(tag: str, operation_id: str) -> Any:
    """The generated module of one operation (`api/<tag>/<operation id>.py`)."""
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


def test_the_generated_client_trains_follows_predicts_draws_and_exports(
    generated: ModuleType, service: str
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated.Client(
        base_url=service, raise_on_unexpected_status=True, timeout=httpx.Timeout(120)
    )
    body = models.JobCreate.from_dict(
        {
            "experiment": "generated-client",
            "model": {"arch": "lenet", "config": {"activation": "relu"}},
            "dataset": {"name": "digits"},
            "hyperparameters": {"epochs": 3, "batch_size": 32, "lr": 0.1},
        }
    )
    submitted = operation("jobs", "submit_job").sync(client=client, body=body)
    assert isinstance(submitted, models.JobOut), submitted
    job = follow(client, submitted.id)
    assert job.status == "succeeded", job.error
    assert isinstance(job.model_id, str)
    events = operation("jobs", "job_events").sync(job.id, client=client)
    assert "event: end" in events

    digits = load_digits_raw().inputs[:20].int().tolist()
    request = models.PredictRequest(inputs=digits, top_k=3)
    answer = operation("predict", "predict").sync(job.model_id, client=client, body=request)
    assert isinstance(answer, models.PredictResponse), answer
    raw = httpx.post(f"{service}/v1/models/{job.model_id}/predict", json=request.to_dict())
    assert answer.to_dict() == raw.json()  # decoded as the service sent it
    assert [len(p.probabilities.to_dict()) for p in answer.predictions] == [3] * 20

    curves = operation("curves", "job_curves").sync(job.id, client=client)
    assert curves.payload.read().startswith(PNG_SIGNATURE)

    exported = operation("models", "export_model").sync(
        job.model_id, client=client, format_=models.ExportModelFormat.ONNX
    )
    net = onnx.load_model_from_string(exported.payload.read())
    onnx.checker.check_model(net)
    assert [node.name for node in net.graph.input]

    missing = operation("jobs", "get_job").sync("0" * 32, client=client)
    assert isinstance(missing, models.ErrorOut)
    assert "0" * 32 in missing.detail


def follow(client: Any, job_id: str) -> Any:
    """Poll GET /v1/jobs/{id} until the job has finished."""
    get_job = operation("jobs", "get_job")
    for _ in range(MAX_POLLS):
        job = get_job.sync(job_id, client=client)
        if job.status in FINISHED:
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"job {job_id} did not finish: {job.status}")

"""`d2l-service alias`, `export` and `delete-model`: a model named, downloaded and removed from
the command line, and the server's refusal printed when an alias still names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from d2l_client import Client
from tests.client.conftest import Service


def run(capsys: pytest.CaptureFixture[str], service: Service, *argv: str) -> tuple[int, str, str]:
    code = main([argv[0], "--url", service.url, *argv[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_model_is_named_exported_and_deleted(
    capsys: pytest.CaptureFixture[str], service: Service, tmp_path: Path
) -> None:
    with Client(service.url) as client:
        job = client.train(
            arch="mlp", dataset="digits", experiment="cli-models", hyperparameters={"epochs": 1}
        )
        model_id = job.wait()["model_id"]
    assert model_id is not None
    code, out, err = run(capsys, service, "alias", model_id, "cli-digits", "--production")
    assert code == 0, err
    assert out == f"model {model_id}: cli-digits:1, cli-digits:latest, cli-digits:production\n"

    code, _, err = run(capsys, service, "delete-model", "cli-digits:production")
    assert code == 1 and "409" in err and "cli-digits" in err

    exported, sidecar = tmp_path / "net.pt", tmp_path / "net.json"
    code, _, err = run(
        capsys, service, "export", "cli-digits:latest", "-o", str(exported),
        "--format", "torchscript", "--sidecar", str(sidecar),
    )  # fmt: skip
    assert code == 0, err
    assert exported.read_bytes().startswith(b"PK")  # TorchScript's zip archive
    assert len(json.loads(sidecar.read_text())["class_names"]) == 10

    code, out, _ = run(capsys, service, "alias", model_id, "cli-digits", "--remove")
    assert code == 0 and out == f"model {model_id}: no aliases\n"
    code, out, err = run(capsys, service, "delete-model", model_id)
    assert code == 0, err
    code, out, _ = run(capsys, service, "models", "--arch", "mlp")
    assert model_id not in out
    code, out, _ = run(capsys, service, "show", job.id)
    assert code == 0 and json.loads(out)["status"] == "succeeded"  # the job stays

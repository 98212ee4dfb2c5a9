"""POST /v1/checkpoints measures the net a client describes and the file it sends before either
takes memory: the net on the meta device, the file by its headers (D2L_WEIGHTS_MAX_BYTES)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save as safetensors_save

import core.registry.weights
import models
from core.settings import Settings

LIMIT = 1_000_000  # bytes: LeNet's 61,706 parameters (247 KB) fit
RELU = '{"activation": "relu"}'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", weights_max_bytes=LIMIT)


def saved(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deflated(data: bytes) -> bytes:
    """The same torch.save zip with every member compressed (zeros shrink ~1000x)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            target.writestr(member.filename, source.read(member.filename))
    return out.getvalue()


LENET = models.get_model("lenet", in_channels=1, num_classes=10, activation="relu").state_dict()


def lenet_state() -> dict[str, torch.Tensor]:
    return dict(LENET)


def upload(client: TestClient, filename: str, data: bytes, **form: str) -> Any:
    return client.post(
        "/v1/checkpoints",
        files={"file": (filename, data)},
        data={"arch": "lenet", "config": RELU, **form},
    )


@pytest.fixture
def built_on(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device of every net the service builds while the test runs."""
    devices: list[str] = []
    real_build_net = models.build_net

    def recording_build_net(*args: Any, **kwargs: Any) -> torch.nn.Module:
        net = real_build_net(*args, **kwargs)
        devices.extend({parameter.device.type for parameter in net.parameters()})
        return net

    monkeypatch.setattr(models, "build_net", recording_build_net)
    return devices


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per torch.load of an uploaded file."""
    calls: list[int] = []
    real_load = torch.load

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(core.registry.weights.torch, "load", counting_load)
    return calls


def test_weights_within_the_limit_load_also_when_compressed(
    client: TestClient, built_on: list[str]
) -> None:
    assert upload(client, "lenet.pt", saved(lenet_state())).status_code == 201
    response = upload(client, "lenet.pt", deflated(saved(lenet_state())))
    assert response.status_code == 201, response.text
    assert set(built_on) == {"meta"}  # the declared net is only ever described


def test_a_described_net_over_the_limit_is_refused_without_building_it(
    client: TestClient, built_on: list[str], loads: list[int]
) -> None:
    """LeNet with 20,000 classes has 1.7 M parameters (6.8 MB): refused, measured on meta."""
    response = upload(client, "lenet.pt", saved(lenet_state()), num_classes="20000")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "parameters" in detail and f"at most {LIMIT} bytes" in detail
    assert "D2L_WEIGHTS_MAX_BYTES" in detail
    assert set(built_on) == {"meta"} and loads == []


def test_a_small_file_that_expands_past_the_limit_is_refused_unloaded(
    client: TestClient, loads: list[int]
) -> None:
    """2 M zeros (8 MB) in a ~10 KB compressed .pt: its zip directory says so; never loaded."""
    bomb = deflated(saved({"padding": torch.zeros(2_000_000)}))
    assert len(bomb) < 100_000
    response = upload(client, "lenet.pt", bomb)
    assert response.status_code == 413, response.text
    assert "expands to" in response.json()["detail"]
    assert f"at most {LIMIT} bytes (D2L_WEIGHTS_MAX_BYTES)" in response.json()["detail"]
    assert loads == []


def test_a_safetensors_file_past_the_limit_is_refused_by_its_header(client: TestClient) -> None:
    tensors = {**lenet_state(), "padding": torch.zeros(300_000)}
    response = upload(client, "lenet.safetensors", safetensors_save(tensors))
    assert response.status_code == 413, response.text
    assert "D2L_WEIGHTS_MAX_BYTES" in response.json()["detail"]


def test_a_pt_file_not_in_torch_saves_zip_format_is_refused(client: TestClient) -> None:
    """The legacy format declares its storages' sizes inside the pickle, read only while
    loading; torch.save has written the zip format (sizes in its directory) since 1.6."""
    buffer = io.BytesIO()
    torch.save(lenet_state(), buffer, _use_new_zipfile_serialization=False)
    response = upload(client, "lenet.pt", buffer.getvalue())
    assert response.status_code == 422
    assert "torch.save" in response.json()["detail"]

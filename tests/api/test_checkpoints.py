"""Uploading state_dicts for fine-tuning, and submitting fine-tune jobs that use them."""

import io
import pickle
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save as safetensors_save

import models
from tests.conftest import RecordingQueue

RELU = '{"activation": "relu"}'


def lenet_bytes(fmt: str = "pt", **sizes: int) -> bytes:
    net = models.get_model(
        "lenet", in_channels=1, num_classes=sizes.get("num_classes", 10), activation="relu"
    )
    if fmt == "safetensors":
        return safetensors_save({k: v.contiguous() for k, v in net.state_dict().items()})
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def upload(client: TestClient, filename: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/checkpoints",
        files={"file": (filename, data)},
        data={"arch": "lenet", "config": RELU, **form},
    )


@pytest.mark.parametrize(
    ("filename", "fmt"), [("lenet.pt", "pt"), ("lenet.safetensors", "safetensors")]
)
def test_a_state_dict_that_loads_is_stored_with_its_checksum(
    client: TestClient, filename: str, fmt: str
) -> None:
    response = upload(client, filename, lenet_bytes(fmt))
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["arch"], stored["num_classes"], stored["input_size"]) == ("lenet", 10, 28)
    assert len(stored["sha256"]) == 64
    assert client.get(f"/v1/checkpoints/{stored['id']}").json() == stored


def test_a_state_dict_of_another_shape_is_refused_naming_the_tensors(
    client: TestClient, settings
) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, "lenet.pt", lenet_bytes(num_classes=7))
    assert response.status_code == 422
    assert "11.weight [7, 84] (expected [10, 84])" in response.json()["detail"]
    assert not (settings.artifacts / "uploads").exists()  # nothing stored


def test_missing_and_unexpected_keys_are_named(client: TestClient) -> None:
    sigmoid = upload(client, "lenet.pt", lenet_bytes(), config="{}")  # same keys: loads
    assert sigmoid.status_code == 201
    state = torch.load(io.BytesIO(lenet_bytes()), weights_only=True)
    state["extra.weight"] = state.pop("0.weight")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    response = upload(client, "lenet.pt", buffer.getvalue())
    assert response.status_code == 422
    assert "missing: 0.weight" in response.text and "unexpected: extra.weight" in response.text


def test_files_that_are_not_plain_state_dicts_are_refused(
    client: TestClient, tmp_path: Path
) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tmp_path / "pwned",))

    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer, pickle_module=pickle)
    response = upload(client, "evil.pt", buffer.getvalue())
    assert response.status_code == 422 and "weights_only" in response.text
    assert not (tmp_path / "pwned").exists()
    assert upload(client, "junk.safetensors", b"not a safetensors file").status_code == 422
    assert upload(client, "weights.h5", lenet_bytes()).status_code == 422
    assert upload(client, "lenet.pt", lenet_bytes(), arch="lenet9").status_code == 422
    assert upload(client, "lenet.pt", lenet_bytes(), config="[1]").status_code == 422


FINETUNE = {
    "kind": "finetune",
    "model": {"arch": "lenet", "config": {"activation": "relu"}},
    "dataset": {"name": "digits"},
}


def test_a_finetune_job_from_an_upload_is_queued(client: TestClient, queue: RecordingQueue) -> None:
    weights_id = upload(client, "lenet.pt", lenet_bytes()).json()["id"]
    body = {**FINETUNE, "finetune": {"source": {"checkpoint_id": weights_id}, "freeze": "features"}}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    assert queue.sent[-1][0] == response.json()["id"]


def test_finetune_jobs_that_cannot_use_their_source_are_refused(
    client: TestClient, queue: RecordingQueue
) -> None:
    weights_id = upload(client, "lenet.pt", lenet_bytes()).json()["id"]
    source = {"source": {"checkpoint_id": weights_id}}
    other_arch = {**FINETUNE, "model": {"arch": "mlp"}, "finetune": source}
    response = client.post("/v1/jobs", json=other_arch)
    assert response.status_code == 422 and "set model.arch to 'lenet'" in response.text
    other_config = {**FINETUNE, "model": {"arch": "lenet"}, "finetune": source}
    assert "use the same config" in client.post("/v1/jobs", json=other_config).text
    missing = {**FINETUNE, "finetune": {"source": {"job_id": "f" * 32}}}
    response = client.post("/v1/jobs", json=missing)
    assert response.status_code == 422 and "finetune.source: no job" in response.text
    queued = client.post("/v1/jobs", json={k: v for k, v in FINETUNE.items() if k != "kind"}).json()
    unfinished = {**FINETUNE, "finetune": {"source": {"job_id": queued["id"]}}}
    response = client.post("/v1/jobs", json=unfinished)
    assert response.status_code == 422 and "fine-tune from a succeeded job" in response.text
    both = {**FINETUNE, "finetune": {"source": {"job_id": "a", "checkpoint_id": "b"}}}
    assert "exactly one" in client.post("/v1/jobs", json=both).text
    bad_prefix = {**FINETUNE, "finetune": {**source, "freeze": ["conv1."]}}
    response = client.post("/v1/jobs", json=bad_prefix)
    assert response.status_code == 422 and "matches no parameter" in response.text
    assert len(queue.sent) == 1  # only the plain training job was queued

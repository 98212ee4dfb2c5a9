"""A trained model's parameters: statistics, values, and the state_dict download."""

import io

import pytest
import torch
from safetensors.torch import load as safetensors_load

import models
from tests.api.conftest import Trained


def downloaded_state_dict(trained: Trained) -> dict[str, torch.Tensor]:
    response = trained.client.get(f"/v1/models/{trained.model_id}/state_dict")
    assert response.status_code == 200
    assert f'filename="{trained.model_id}.pt"' in response.headers["content-disposition"]
    return torch.load(io.BytesIO(response.content), weights_only=True)


def test_the_state_dict_loads_strictly_into_the_declared_architecture(trained: Trained) -> None:
    state_dict = downloaded_state_dict(trained)
    net = models.get_model("lenet", in_channels=1, num_classes=10, activation="relu")
    net.load_state_dict(state_dict, strict=True)


def test_the_safetensors_download_holds_the_same_tensors(trained: Trained) -> None:
    response = trained.client.get(
        f"/v1/models/{trained.model_id}/state_dict", params={"format": "safetensors"}
    )
    assert response.status_code == 200
    tensors = safetensors_load(response.content)
    reference = downloaded_state_dict(trained)
    assert tensors.keys() == reference.keys()
    assert all(torch.equal(tensors[name], reference[name]) for name in reference)
    bad = trained.client.get(f"/v1/models/{trained.model_id}/state_dict", params={"format": "h5"})
    assert bad.status_code == 422


def test_parameter_statistics_match_the_tensors(trained: Trained) -> None:
    table = trained.client.get(f"/v1/models/{trained.model_id}/parameters").json()
    state_dict = downloaded_state_dict(trained)
    assert [row["name"] for row in table] == list(state_dict)
    for row in table:
        tensor = state_dict[row["name"]].double()
        assert row["shape"] == list(tensor.shape) and row["dtype"] == "float32"
        assert row["mean"] == pytest.approx(tensor.mean().item(), rel=1e-9, abs=1e-12)
        assert row["std"] == pytest.approx(tensor.std(correction=0).item(), rel=1e-9, abs=1e-12)
        assert (row["min"], row["max"]) == (tensor.min().item(), tensor.max().item())
        assert row["l2_norm"] == pytest.approx(tensor.norm().item())


def test_one_tensors_values_are_returned_up_to_the_limit(trained: Trained) -> None:
    url = f"/v1/models/{trained.model_id}/parameters"
    bias = trained.client.get(url, params={"name": "0.bias"}).json()
    reference = downloaded_state_dict(trained)["0.bias"]
    assert bias["values"] == pytest.approx(reference.tolist()) and bias["truncated"] is False
    weight = trained.client.get(url, params={"name": "7.weight", "limit": 10}).json()
    assert (
        len(weight["values"]) == 10 and weight["truncated"] is True and weight["numel"] == 400 * 120
    )
    missing = trained.client.get(url, params={"name": "nope"})
    assert missing.status_code == 404 and "0.weight" in missing.json()["detail"]


def test_unknown_models_are_404(trained: Trained) -> None:
    for path in ("parameters", "state_dict"):
        assert trained.client.get(f"/v1/models/0000/{path}").status_code == 404

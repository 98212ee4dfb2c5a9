"""Exported models answer as /predict does: ONNX in onnxruntime, TorchScript in torch.jit."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import onnxruntime
import pytest
import torch

from core.datasets.digits import load_digits_raw
from core.preprocessing import Preprocessing, apply
from tests.api.conftest import Trained


def raw_samples() -> torch.Tensor:
    return load_digits_raw().inputs[:20].to(torch.float32)


def served_probabilities(trained: Trained, raw: torch.Tensor) -> np.ndarray:
    """What /predict answers, as an (N, classes) array in class order."""
    predictions = trained.client.post(
        f"/v1/models/{trained.model_id}/predict", json={"inputs": raw.tolist()}
    ).json()["predictions"]
    names = trained.result["class_names"]
    return np.array([[p["probabilities"][name] for name in names] for p in predictions])


def preprocess_as_the_headers_say(headers: dict[str, str], raw: torch.Tensor) -> np.ndarray:
    prep = Preprocessing.from_dict(json.loads(headers["x-d2l-preprocessing"]))
    inputs = apply(prep, raw).numpy()
    assert list(inputs.shape[1:]) == json.loads(headers["x-d2l-input-shape"])[1:]
    return inputs


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_the_onnx_export_in_onnxruntime_matches_pytorch(trained: Trained) -> None:
    response = trained.client.get(
        f"/v1/models/{trained.model_id}/export", params={"format": "onnx"}
    )
    assert response.status_code == 200, response.text
    assert f"{trained.model_id}.onnx" in response.headers["content-disposition"]
    raw = raw_samples()
    session = onnxruntime.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    (logits,) = session.run(
        ["output"], {"input": preprocess_as_the_headers_say(response.headers, raw)}
    )
    np.testing.assert_allclose(softmax(logits), served_probabilities(trained, raw), atol=1e-5)


def test_the_torchscript_export_matches_pytorch(trained: Trained) -> None:
    response = trained.client.get(
        f"/v1/models/{trained.model_id}/export", params={"format": "torchscript"}
    )
    assert response.status_code == 200, response.text
    raw = raw_samples()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(io.BytesIO(response.content))
    inputs = torch.from_numpy(preprocess_as_the_headers_say(response.headers, raw))
    probabilities = torch.softmax(module(inputs), dim=1).detach().numpy()
    np.testing.assert_allclose(probabilities, served_probabilities(trained, raw), atol=1e-5)


def test_the_sidecar_describes_inputs_outputs_preprocessing_and_classes(
    trained: Trained,
) -> None:
    response = trained.client.get(f"/v1/models/{trained.model_id}/export")
    link = response.headers["link"]
    assert link.startswith(f"</v1/models/{trained.model_id}/export/sidecar>")
    sidecar = trained.client.get(f"/v1/models/{trained.model_id}/export/sidecar").json()
    assert sidecar["arch"] == "lenet" and sidecar["class_names"] == trained.result["class_names"]
    assert sidecar["input"] == {"name": "input", "shape": ["N", 1, 28, 28], "dtype": "float32"}
    assert sidecar["output"]["shape"] == ["N", 10]
    assert sidecar["preprocessing"]["raw_shape"] == [8, 8] and sidecar["preprocessing"]["steps"]


@pytest.mark.parametrize("fmt", ["tflite", ""])
def test_an_unknown_format_is_a_422_listing_the_formats(trained: Trained, fmt: str) -> None:
    response = trained.client.get(f"/v1/models/{trained.model_id}/export", params={"format": fmt})
    assert response.status_code == 422
    assert "onnx" in response.text and "torchscript" in response.text

"""A predict request's memory is bounded: every forward pass (and the preprocessing that makes its
input at network size) holds at most D2L_PREDICT_MAX_BATCH samples, however many the request
carries, and a request carries at most D2L_PREDICT_MAX_SAMPLES of them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import api.serving
from api.app import create_app
from api.serving import Serving
from core import preprocessing
from core.datasets.digits import load_digits_raw
from tests.api.conftest import Trained, predict_unbatched


def digits(count: int) -> torch.Tensor:
    return load_digits_raw().inputs[:count]


def png_of(sample: torch.Tensor) -> bytes:
    """A digit (8x8, values 0-16) as an 8-bit grey PNG."""
    pixels = (sample.numpy() * 255 / 16).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def forward_sizes(trained: Trained) -> Iterator[list[int]]:
    """The batch size of every forward pass the served net runs while the test runs."""
    serving: Serving = trained.client.app.state.serving  # type: ignore[attr-defined]
    seen: list[int] = []
    hook = serving.get(trained.model_id).net.register_forward_pre_hook(
        lambda _net, inputs: seen.append(len(inputs[0]))
    )
    yield seen
    hook.remove()


@pytest.fixture
def preprocessed_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many samples each call of the preprocessing (raw -> network size) was given."""
    seen: list[int] = []
    real_apply = preprocessing.apply

    def counting_apply(prep: preprocessing.Preprocessing, raw: torch.Tensor) -> torch.Tensor:
        seen.append(len(raw))
        return real_apply(prep, raw)

    monkeypatch.setattr(preprocessing, "apply", counting_apply)
    return seen


def test_a_large_json_predict_runs_in_passes_of_at_most_max_batch(
    trained: Trained, forward_sizes: list[int], preprocessed_sizes: list[int]
) -> None:
    serving: Serving = trained.client.app.state.serving  # type: ignore[attr-defined]
    samples = digits(100)
    answer = trained.client.post(
        f"/v1/models/{trained.model_id}/predict", json={"inputs": samples.tolist(), "top_k": 2}
    )
    assert answer.status_code == 200, answer.text
    assert serving.max_batch == 32
    assert sum(forward_sizes) == 100 and max(forward_sizes) <= 32
    assert sum(preprocessed_sizes) == 100 and max(preprocessed_sizes) <= 32
    # In the order sent, each sample's own answer.
    alone = predict_unbatched(serving.get(trained.model_id), trained.model_id, samples, top_k=2)
    got = answer.json()["predictions"]
    assert [p["class_index"] for p in got] == [p.class_index for p in alone.predictions]
    assert [list(p["probabilities"].values()) for p in got] == [
        pytest.approx(list(p.probabilities.values()), abs=1e-5) for p in alone.predictions
    ]


def test_image_files_are_decoded_and_run_a_forward_pass_at_a_time(
    trained: Trained,
    forward_sizes: list[int],
    preprocessed_sizes: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    real_images_batch = api.serving.images_batch

    def counting_images_batch(images: list[Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        decoded.append(len(images))
        return real_images_batch(images, *args, **kwargs)

    monkeypatch.setattr(api.serving, "images_batch", counting_images_batch)
    samples = digits(70)
    files = [("files", (f"{index}.png", png_of(sample))) for index, sample in enumerate(samples)]
    answer = trained.client.post(f"/v1/models/{trained.model_id}/predict/images", files=files)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 70
    assert decoded == [32, 32, 6]
    assert sum(forward_sizes) == 70 and max(forward_sizes) <= 32
    assert max(preprocessed_sizes) <= 32
    one_by_one = [
        trained.client.post(
            f"/v1/models/{trained.model_id}/predict/images", files=[files[index]]
        ).json()["predictions"][0]["class_index"]
        for index in (0, 33, 69)
    ]
    got = answer.json()["predictions"]
    assert [got[index]["class_index"] for index in (0, 33, 69)] == one_by_one


@pytest.fixture
def capped(trained: Trained) -> Iterator[TestClient]:
    """The trained model's service with at most 10 samples a request."""
    settings = trained.client.app.state.settings  # type: ignore[attr-defined]
    app = create_app(settings.model_copy(update={"predict_max_samples": 10}))
    with TestClient(app) as client:
        yield client


def test_more_samples_than_a_request_may_carry_is_a_413_naming_the_limit(
    trained: Trained, capped: TestClient
) -> None:
    url = f"/v1/models/{trained.model_id}/predict"
    assert capped.post(url, json={"inputs": digits(10).tolist()}).status_code == 200
    refused = capped.post(url, json={"inputs": digits(11).tolist()})
    assert refused.status_code == 413
    detail = refused.json()["detail"]
    assert "11 samples" in detail and "at most 10" in detail
    assert "D2L_PREDICT_MAX_SAMPLES" in detail and "predict job" in detail


def test_more_image_files_than_a_request_may_carry_is_a_413(
    trained: Trained, capped: TestClient
) -> None:
    files = [("files", (f"{index}.png", png_of(sample))) for index, sample in enumerate(digits(11))]
    refused = capped.post(f"/v1/models/{trained.model_id}/predict/images", files=files)
    assert refused.status_code == 413
    assert "at most 10" in refused.json()["detail"]

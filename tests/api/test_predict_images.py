"""POST /v1/models/{id}/predict/images: image files through the model's own preprocessing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.artifacts import ArtifactStore
from core.datasets import load_raw, prepare
from core.preprocessing import Preprocessing, apply
from core.settings import Settings
from tests.api.conftest import Trained
from tests.factories import add_job, migrated
from worker.runner import JobRunner


@dataclass(frozen=True)
class FakeModel:
    client: TestClient
    model_id: str
    result: dict


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeModel]:
    """A LeNet trained for one epoch on fake_images (3x32x32 RGB) through the real runner."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("fake"))
    db = migrated(settings)
    with db.transaction() as session:
        job_id = add_job(
            session,
            model={"arch": "lenet", "config": {"activation": "relu"}},
            dataset={"name": "fake_images"},
            hyperparameters={"epochs": 1, "batch_size": 64, "lr": 0.05},
        ).id
    JobRunner(
        db=db,
        store=ArtifactStore(settings.artifacts),
        data_dir=settings.datasets_dir,
        worker_name="test",
    ).run(job_id)
    with TestClient(create_app(settings)) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job["error"]
        yield FakeModel(client, job["model_id"], job["result"])
    db.engine.dispose()


def png_of(chw: torch.Tensor) -> bytes:
    """A lossless PNG of a (C, H, W) uint8 sample."""
    pixels = chw.numpy()
    image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_an_image_predicts_exactly_as_the_evaluation_path_saw_it(
    fake_model: FakeModel, tmp_path: Path
) -> None:
    data = prepare(
        "fake_images", root=tmp_path, input_size=28, val_fraction=0.1, test_fraction=0.2, seed=0
    )
    assert data.preprocessing.to_dict() == fake_model.result["preprocessing"]
    index = int(data.test_indices[0])
    raw = load_raw("fake_images", root=tmp_path).inputs[index]
    net = fake_model.client.app.state.serving.get(fake_model.model_id).net  # type: ignore[attr-defined]
    with torch.inference_mode():
        expected = torch.softmax(net(data.test.network_inputs()[:1]), dim=1)[0]

    answer = fake_model.client.post(
        f"/v1/models/{fake_model.model_id}/predict/images",
        files=[("files", ("sample.png", png_of(raw), "image/png"))],
    )
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["predictions"]
    class_names = fake_model.result["class_names"]
    got = torch.tensor([prediction["probabilities"][name] for name in class_names])
    assert torch.allclose(got, expected, rtol=0, atol=1e-6)
    assert prediction["label"] == class_names[int(expected.argmax())]

    as_json = fake_model.client.post(
        f"/v1/models/{fake_model.model_id}/predict", json={"inputs": raw.tolist()}
    ).json()
    assert as_json["predictions"][0]["probabilities"] == prediction["probabilities"]


def test_many_images_grey_and_resized_are_converted_to_the_models_raw_shape(
    fake_model: FakeModel,
) -> None:
    grey = Image.fromarray(np.full((50, 40), 128, dtype=np.uint8))
    out = io.BytesIO()
    grey.save(out, format="JPEG")
    rgb = png_of(torch.zeros(3, 32, 32, dtype=torch.uint8))
    answer = fake_model.client.post(
        f"/v1/models/{fake_model.model_id}/predict/images",
        files=[
            ("files", ("a.jpg", out.getvalue(), "image/jpeg")),
            ("files", ("b.png", rgb, "image/png")),
        ],
        data={"top_k": "3"},
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2 and all(len(p["probabilities"]) == 3 for p in predictions)
    assert all(p["label"].startswith("class_") for p in predictions)


def test_a_file_that_is_not_an_image_is_a_422_naming_it(fake_model: FakeModel) -> None:
    answer = fake_model.client.post(
        f"/v1/models/{fake_model.model_id}/predict/images",
        files=[
            ("files", ("ok.png", png_of(torch.zeros(3, 32, 32, dtype=torch.uint8)), "image/png")),
            ("files", ("notes.txt", b"hello", "text/plain")),
        ],
    )
    assert answer.status_code == 422 and "notes.txt" in answer.json()["detail"]


def test_unknown_model_is_404(fake_model: FakeModel) -> None:
    answer = fake_model.client.post(
        f"/v1/models/{'0' * 32}/predict/images",
        files=[("files", ("a.png", png_of(torch.zeros(3, 4, 4, dtype=torch.uint8)), "image/png"))],
    )
    assert answer.status_code == 404


def test_a_grey_image_predicts_on_a_digits_model_in_its_raw_units(trained: Trained) -> None:
    """digits stores 0-16 (scale 1/16): pixel 255 is raw 16, so the JSON and image paths agree."""
    raw = torch.tensor(np.random.default_rng(0).integers(0, 17, (8, 8)), dtype=torch.float32)
    pixels = (raw * 255 / 16).round().to(torch.uint8)
    answer = trained.client.post(
        f"/v1/models/{trained.model_id}/predict/images",
        files=[("files", ("d.png", png_of(pixels[None]), "image/png"))],
    )
    assert answer.status_code == 200, answer.text
    prep = Preprocessing.from_dict(trained.result["preprocessing"])
    net = trained.client.app.state.serving.get(trained.model_id).net  # type: ignore[attr-defined]
    with torch.inference_mode():
        expected = torch.softmax(net(apply(prep, (pixels.float() / 255 * 16)[None])), dim=1)[0]
    names = trained.result["class_names"]
    got = torch.tensor([answer.json()["predictions"][0]["probabilities"][name] for name in names])
    assert torch.allclose(got, expected, atol=1e-6)

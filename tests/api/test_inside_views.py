"""Inside the nets: feature maps, filters, saliency, confusion and top losses of a trained LeNet
and a tiny ResNet, as JSON and as pictures; and a clear 422 where a view makes no sense."""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.serving.inside import evaluation
from core.settings import Settings
from tests.api.conftest import Trained, train_submitted
from tests.factories import add_job


@dataclass(frozen=True)
class Net:
    client: TestClient
    settings: Settings
    job: dict[str, Any]

    @property
    def model_id(self) -> str:
        return str(self.job["model_id"])

    @property
    def input_size(self) -> int:
        return int(self.job["result"]["preprocessing"]["input_size"])

    def weights(self) -> dict[str, list[int]]:
        """state_dict key -> shape, as GET /parameters lists them."""
        table = self.client.get(f"/v1/models/{self.model_id}/parameters").json()
        return {row["name"]: row["shape"] for row in table}


def trained_net(trained: Trained, body: dict[str, Any]) -> Net:
    settings = trained.client.app.state.settings  # type: ignore[attr-defined]
    job = train_submitted(trained.client, body, db=trained.db, settings=settings)
    return Net(trained.client, settings, job)


@pytest.fixture(scope="module")
def lenet(trained: Trained) -> Net:
    settings = trained.client.app.state.settings  # type: ignore[attr-defined]
    job = trained.client.get(f"/v1/jobs/{trained.job_id}").json()
    return Net(trained.client, settings, job)


@pytest.fixture(scope="module")
def resnet(trained: Trained) -> Net:
    """ResNet-18 for one epoch on a small train split (most of digits is validation and test)
    at 32x32: seconds on a CPU, and every stage of the course's net is there."""
    return trained_net(
        trained,
        {
            "experiment": "inside",
            "model": {"arch": "resnet18", "input_size": 32},
            "dataset": {"name": "digits", "val_fraction": 0.5, "test_fraction": 0.45},
            "hyperparameters": {"epochs": 1, "batch_size": 16, "lr": 0.05},
        },
    )


@pytest.fixture(params=["lenet", "resnet"])
def net(request: pytest.FixtureRequest) -> Net:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def decoded_png(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 1.0  # a picture, not a blank
    return pixels


def png_file(side: int = 20) -> bytes:
    pixels = np.zeros((side, side), dtype=np.uint8)
    pixels[4:16, 8:12] = 255  # a bright stroke: a "1"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_feature_maps_show_every_conv_and_pool_stage_with_its_channels(net: Net) -> None:
    answer = net.client.get(f"/v1/models/{net.model_id}/feature-maps?channels=8").json()
    weights = net.weights()
    assert answer["input"]["source"] == "dataset" and answer["input"]["split"] == "test"
    assert np.asarray(answer["image"]).shape == (1, net.input_size, net.input_size)
    convs = [layer for layer in answer["layers"] if layer["kind"] == "Conv2d"]
    assert convs and {layer["kind"] for layer in answer["layers"]} >= {"Conv2d", "MaxPool2d"}
    for layer in convs:
        assert layer["channels"] == weights[f"{layer['layer']}.weight"][0]
    for layer in answer["layers"]:
        maps = np.asarray(layer["maps"])
        assert layer["shown_channels"] == min(8, layer["channels"]) == maps.shape[0]
        assert maps.shape[1:] == (layer["height"], layer["width"])  # small nets: not pooled
    sides = [layer["height"] for layer in answer["layers"]]
    assert sides == sorted(sides, reverse=True)  # stages see ever coarser grids


def test_lenet_feature_maps_are_the_course_s_four_stages(lenet: Net) -> None:
    answer = lenet.client.get(f"/v1/models/{lenet.model_id}/feature-maps").json()
    shapes = [(layer["kind"], layer["channels"], layer["height"]) for layer in answer["layers"]]
    assert shapes == [
        ("Conv2d", 6, 28),
        ("MaxPool2d", 6, 14),
        ("Conv2d", 16, 10),
        ("MaxPool2d", 16, 5),
    ]


def test_large_maps_are_pooled_to_the_pixel_bound(lenet: Net, trained: Trained) -> None:
    settings = Settings(data_dir=lenet.settings.data_dir, inside_max_pixels=100)
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/v1/models/{lenet.model_id}/feature-maps?layer=0").json()
        refused = client.get(f"/v1/models/{lenet.model_id}/feature-maps?channels=65")
    (layer,) = answer["layers"]
    maps = np.asarray(layer["maps"])
    assert (layer["height"], layer["pooled_by"]) == (28, 3)
    assert maps.shape[1] * maps.shape[2] <= 100
    assert refused.status_code == 422 and "D2L_INSIDE_MAX_CHANNELS" in refused.text


def test_a_sample_is_chosen_by_dataset_split_and_index(lenet: Net) -> None:
    url = f"/v1/models/{lenet.model_id}/feature-maps"
    first = lenet.client.get(url, params={"split": "train", "index": 3}).json()["input"]
    again = lenet.client.get(url, params={"dataset": "digits", "split": "train", "index": 3})
    assert again.json()["input"] == first and first["label"] in [str(d) for d in range(10)]
    beyond = lenet.client.get(url, params={"split": "test", "index": 100_000})
    assert beyond.status_code == 422 and "has 359 examples" in beyond.text
    unknown = lenet.client.get(url, params={"layer": "99"})
    assert unknown.status_code == 422 and "choose: 0, 2, 3, 5" in unknown.text


def test_filters_are_the_first_conv_layer_s_kernels(net: Net) -> None:
    answer = net.client.get(f"/v1/models/{net.model_id}/filters?channels=64").json()
    shape = net.weights()[f"{answer['layer']}.weight"]
    assert [answer["filters"], answer["in_channels"], *answer["kernel_size"]] == shape
    assert np.asarray(answer["weights"]).shape == (min(64, shape[0]), *shape[1:])


def test_saliency_and_grad_cam_have_the_input_s_shape(net: Net) -> None:
    answer = net.client.get(f"/v1/models/{net.model_id}/saliency?index=5").json()
    side = net.input_size
    saliency, cam = np.asarray(answer["saliency"]), np.asarray(answer["grad_cam"])
    assert saliency.shape == cam.shape == (side, side)
    assert saliency.min() >= 0 and saliency.max() == pytest.approx(1.0)
    assert 0 <= cam.min() and cam.max() <= 1
    assert answer["target"] == answer["prediction"] and answer["grad_cam_layer"]


def test_saliency_explains_a_named_class(lenet: Net) -> None:
    url = f"/v1/models/{lenet.model_id}/saliency"
    predicted = lenet.client.get(url).json()["prediction"]["label"]
    other = "3" if predicted != "3" else "4"
    answer = lenet.client.get(url, params={"class_name": other}).json()
    assert answer["target"]["label"] == other and answer["prediction"]["label"] == predicted
    refused = lenet.client.get(url, params={"class_name": "cat"})
    assert refused.status_code == 422 and "not a class of the model" in refused.text


def test_an_uploaded_image_is_looked_at_as_predict_images_takes_it(lenet: Net) -> None:
    files = {"file": ("one.png", png_file(), "image/png")}
    maps = lenet.client.post(f"/v1/models/{lenet.model_id}/feature-maps", files=files)
    assert maps.status_code == 200, maps.text
    assert maps.json()["input"] == {
        "source": "upload",
        "filename": "one.png",
        "dataset": None,
        "split": None,
        "index": None,
        "dataset_index": None,
        "label": None,
    }
    saliency = lenet.client.post(f"/v1/models/{lenet.model_id}/saliency", files=files).json()
    assert np.asarray(saliency["saliency"]).shape == (28, 28)
    decoded_png(lenet.client.post(f"/v1/models/{lenet.model_id}/saliency.png", files=files))
    decoded_png(lenet.client.post(f"/v1/models/{lenet.model_id}/feature-maps.png", files=files))
    broken = {"file": ("x.png", b"not an image", "image/png")}
    refused = lenet.client.post(f"/v1/models/{lenet.model_id}/saliency", files=broken)
    assert refused.status_code == 422 and "x.png" in refused.text


def test_the_confusion_matrix_counts_the_test_split(net: Net) -> None:
    answer = net.client.get(f"/v1/jobs/{net.job['id']}/confusion").json()
    matrix = np.asarray(answer["matrix"])
    assert matrix.shape == (10, 10) and answer["class_names"] == [str(d) for d in range(10)]
    assert matrix.sum() == answer["evaluated"] == answer["test_examples"] and not answer["cut"]
    assert answer["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert answer["accuracy"] == pytest.approx(net.job["result"]["test_acc"], abs=1e-6)


def test_top_losses_are_the_worst_test_examples_first(net: Net) -> None:
    confusion = net.client.get(f"/v1/jobs/{net.job['id']}/confusion").json()
    errors = int(np.sum(confusion["matrix"]) - np.trace(confusion["matrix"]))
    answer = net.client.get(f"/v1/jobs/{net.job['id']}/top-losses?limit=10").json()
    items = answer["items"]
    losses = [item["loss"] for item in items]
    assert len(items) == 10 and losses == sorted(losses, reverse=True)
    wrong = [item for item in items if item["label"] != item["prediction"]]
    assert len(wrong) >= min(errors, 10) // 2 and (errors == 0 or items[0] in wrong)
    for item in items:
        if item["label_probability"] > 1e-30:  # else it underflowed: the loss is what is exact
            assert item["loss"] == pytest.approx(-math.log(item["label_probability"]), rel=1e-3)
        assert np.asarray(item["sample"]).shape == (8, 8)  # digits as stored
    limited = net.client.get(f"/v1/jobs/{net.job['id']}/top-losses?limit=65")
    assert limited.status_code == 422 and "D2L_INSIDE_MAX_TOP_LOSSES" in limited.text


def test_every_view_has_a_picture(net: Net) -> None:
    model, job = f"/v1/models/{net.model_id}", f"/v1/jobs/{net.job['id']}"
    for path in (
        f"{model}/feature-maps.png",
        f"{model}/filters.png",
        f"{model}/saliency.png?index=2",
        f"{job}/confusion.png",
        f"{job}/top-losses.png",
    ):
        decoded_png(net.client.get(path))


def test_a_cut_evaluation_says_so_and_thirty_requests_cost_one(
    lenet: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = evaluation.evaluate

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", counted)
    settings = Settings(data_dir=lenet.settings.data_dir, inside_max_test_examples=50)
    url = f"/v1/jobs/{lenet.job['id']}/confusion"

    async def class_of_thirty() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.get(url) for _ in range(30)))

    answers = asyncio.run(class_of_thirty())
    assert calls == [50]
    for response in answers:
        answer = response.json()
        assert answer["evaluated"] == np.sum(answer["matrix"]) == 50
        assert answer["cut"] and answer["test_examples"] == 359
    with TestClient(create_app(settings)) as client:  # another process reads the stored one
        assert client.get(url).json() == answers[0].json()
    assert calls == [50]


def test_views_that_make_no_sense_answer_422(trained: Trained, lenet: Net) -> None:
    mlp = trained_net(
        trained,
        {
            "experiment": "inside",
            "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
            "dataset": {"name": "digits"},
            "hyperparameters": {"epochs": 1},
        },
    )
    client, model = lenet.client, f"/v1/models/{mlp.model_id}"
    for view in ("feature-maps", "filters"):
        refused = client.get(f"{model}/{view}")
        assert refused.status_code == 422 and "no conv" in refused.text
    saliency = client.get(f"{model}/saliency").json()  # an MLP has input gradients, no CAM
    assert np.asarray(saliency["saliency"]).shape == (28, 28) and saliency["grad_cam"] is None
    pooling = trained_net(
        trained,
        {
            "experiment": "inside",
            "model": {"arch": "nadaraya_watson", "config": {"parametric": False}},
            "dataset": {"name": "kernel_regression", "val_fraction": 0},
            "hyperparameters": {"epochs": 1},
        },
    )
    for path in ("feature-maps", "filters", "saliency", "saliency.png"):
        refused = client.get(f"/v1/models/{pooling.model_id}/{path}")
        assert refused.status_code == 422 and "attention-pooling" in refused.text
    for path in ("confusion", "top-losses", "confusion.png"):
        refused = client.get(f"/v1/jobs/{pooling.job['id']}/{path}")
        assert refused.status_code == 422 and "no classes" in refused.text


def test_a_job_without_a_model_answers_404_saying_why(trained: Trained) -> None:
    with trained.db.transaction() as session:
        queued = add_job(session).id
    refused = trained.client.get(f"/v1/jobs/{queued}/confusion")
    assert refused.status_code == 404 and "is queued" in refused.text
    missing = trained.client.get("/v1/jobs/nosuchjob/top-losses")
    assert missing.status_code == 404

"""CSV uploads: tabular classification and regression, standardised features, every refusal."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sklearn.datasets import load_diabetes, load_iris

from core.datasets import load_raw, prepare
from core.db import Database
from core.preprocessing import apply
from core.settings import Settings
from tests.api.conftest import train_submitted
from tests.core.datasets.test_uploads import npz_bytes

MLP = {"arch": "mlp", "config": {"flat_features": True, "hidden_sizes": [32]}}


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def iris_csv() -> bytes:
    """scikit-learn's bundled iris (real data): 4 measurements in cm and the species by name."""
    iris = load_iris()
    species = [iris.target_names[label] for label in iris.target]
    header = [*iris.feature_names, "species"]
    return csv_bytes(header, [[*row, name] for row, name in zip(iris.data, species, strict=True)])


def diabetes_csv() -> bytes:
    """scikit-learn's bundled diabetes regression: 10 features, disease progression target."""
    diabetes = load_diabetes()
    header = ["progression", *diabetes.feature_names]  # the target first: named at upload
    rows = [[target, *row] for row, target in zip(diabetes.data, diabetes.target, strict=True)]
    return csv_bytes(header, rows)


def upload(client: TestClient, data: bytes, name: str = "table.csv", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/datasets", files={"file": (name, data)}, data=form)


def test_a_classification_csv_trains_and_predicts_raw_rows_by_class_name(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    answer = upload(client, iris_csv(), "iris.csv")
    assert answer.status_code == 201, answer.text
    dataset = answer.json()
    assert dataset["task"] == "classification" and dataset["format"] == "csv"
    assert dataset["class_names"] == ["setosa", "versicolor", "virginica"]
    assert dataset["counts"] == {"setosa": 50, "versicolor": 50, "virginica": 50}
    assert dataset["features"][0] == "sepal length (cm)" and dataset["target"] == "species"
    assert dataset["raw_shape"] == [4] and dataset["num_examples"] == 150

    body = {
        "model": MLP,
        "dataset": {"name": dataset["id"], "test_fraction": 0.2},
        "hyperparameters": {"epochs": 60, "batch_size": 16, "lr": 0.1},
    }
    job = train_submitted(client, body, db=sqlite_db, settings=settings)
    assert job["result"]["test_acc"] >= 0.85
    iris = load_iris()
    rows = [iris.data[0].tolist(), iris.data[100].tolist()]  # raw centimetres, as uploaded
    prediction = client.post(f"/v1/models/{job['model_id']}/predict", json={"inputs": rows})
    assert prediction.status_code == 200, prediction.text
    labels = [item["label"] for item in prediction.json()["predictions"]]
    assert labels == ["setosa", "virginica"]


def test_features_are_standardised_on_the_train_split_and_inference_applies_the_same(
    client: TestClient, settings: Settings
) -> None:
    dataset_id = upload(client, iris_csv(), "iris.csv").json()["id"]
    data = prepare(
        dataset_id,
        root=settings.datasets_dir,
        input_size=4,
        val_fraction=0.1,
        test_fraction=0.2,
        seed=0,
    )
    assert data.train.network_inputs().mean(dim=0).abs().max() < 1e-5
    assert (data.train.network_inputs().std(dim=0) - 1).abs().max() < 1e-5
    raw = load_raw(dataset_id, root=settings.datasets_dir)
    served = apply(data.preprocessing, raw.inputs[data.test_indices])
    assert torch.equal(served, data.test.network_inputs())  # what /predict computes from raw rows


def test_a_regression_csv_with_a_named_target_trains_a_linear_model(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    answer = upload(client, diabetes_csv(), "diabetes.csv", target="progression")
    assert answer.status_code == 201, answer.text
    dataset = answer.json()
    assert dataset["task"] == "regression" and dataset["class_names"] == ["progression"]
    assert dataset["features"] == list(load_diabetes().feature_names) and dataset["counts"] == {}

    body = {
        "model": {"arch": "mlp", "config": {"flat_features": True, "hidden_sizes": []}},
        "dataset": {"name": dataset["id"], "test_fraction": 0.2},
        "hyperparameters": {"epochs": 40, "batch_size": 32, "lr": 0.05},
    }
    job = train_submitted(client, body, db=sqlite_db, settings=settings)
    result = job["result"]
    variance = float(np.var(load_diabetes().target))
    assert result["test_loss"] < 0.7 * variance  # better than predicting the mean
    row = load_diabetes().data[0].tolist()
    prediction = client.post(f"/v1/models/{job['model_id']}/predict", json={"inputs": [row]})
    assert prediction.status_code == 200, prediction.text
    value = prediction.json()["predictions"][0]["value"]
    assert 0 < value < 400  # progression scores lie in 25-346


def test_auto_task_whole_number_labels_classify_and_task_regression_overrides(
    client: TestClient,
) -> None:
    rows = [[i * 0.5, i % 3] for i in range(30)]
    auto = upload(client, csv_bytes(["x", "label"], rows)).json()
    assert auto["task"] == "classification" and auto["class_names"] == ["0", "1", "2"]
    forced = upload(client, csv_bytes(["x", "label"], rows), task="regression").json()
    assert forced["task"] == "regression" and forced["class_names"] == ["label"]


def test_an_image_net_or_augmentation_on_a_table_is_refused_at_submission(
    client: TestClient,
) -> None:
    dataset_id = upload(client, iris_csv()).json()["id"]
    lenet = {"model": {"arch": "lenet"}, "dataset": {"name": dataset_id}}
    answer = client.post("/v1/jobs", json=lenet)
    assert answer.status_code == 422 and "flat_features" in answer.text
    augmented = {
        "model": MLP,
        "dataset": {"name": dataset_id},
        "hyperparameters": {"augmentation": {"horizontal_flip": True}},
    }
    answer = client.post("/v1/jobs", json=augmented)
    assert answer.status_code == 422 and "augmentation" in answer.text


BAD_CSVS: dict[str, tuple[bytes, dict[str, str], str]] = {
    "text feature": (csv_bytes(["a", "y"], [[1, 0], ["abc", 1]]), {}, "line 3, column 'a'"),
    "missing value": (csv_bytes(["a", "y"], [[1, 0], ["", 1]]), {}, "fill or drop missing"),
    "ragged row": (b"a,b,y\n1,2,0\n1,1\n", {}, "line 3 has 2 fields"),
    "no such target": (csv_bytes(["a", "y"], [[1, 0], [2, 1]]), {"target": "z"}, "no column 'z'"),
    "one class": (csv_bytes(["a", "y"], [[1, "cat"], [2, "cat"]]), {}, "at least 2 classes"),
    "header only": (b"a,y\n", {}, "at least one data row"),
    "duplicate header": (b"a,a,y\n1,2,0\n3,4,1\n", {}, "name every column once"),
    "not utf-8": (b"a,y\n\xff\xfe,1\n", {}, "not UTF-8"),
    "nan target": (csv_bytes(["a", "y"], [[1, 0.5], [2, "nan"]]), {"task": "regression"}, "y"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_every_bad_csv_is_a_422_that_leaves_nothing(
    client: TestClient, settings: Settings, case: str
) -> None:
    data, form, reason = BAD_CSVS[case]
    answer = upload(client, data, **form)
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"]
    assert list((settings.datasets_dir / "uploads").iterdir()) == []


def test_csv_fields_on_an_image_upload_are_refused(client: TestClient, settings: Settings) -> None:
    data = npz_bytes(x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    answer = upload(client, data, "images.npz", target="label")
    assert answer.status_code == 422 and "CSV uploads only" in answer.json()["detail"]
    assert not list(settings.datasets_dir.rglob("*.npz"))


def test_the_stored_table_is_what_was_uploaded(client: TestClient, settings: Settings) -> None:
    dataset_id = upload(client, iris_csv(), "iris.csv").json()["id"]
    raw = load_raw(dataset_id, root=settings.datasets_dir)
    iris = load_iris()
    assert raw.inputs.dtype == torch.float32 and raw.inputs.shape == (150, 4)
    assert np.allclose(raw.inputs.numpy(), iris.data.astype(np.float32))
    assert raw.targets.tolist() == iris.target.tolist()  # names sorted: setosa 0, ...
    assert Path(settings.datasets_dir / "uploads" / dataset_id / "meta.json").exists()

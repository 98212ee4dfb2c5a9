"""The model zoo over HTTP: options, layer tables, parameter counts and FLOPs."""

from fastapi.testclient import TestClient

import models


def test_every_registered_architecture_is_listed_with_its_options(client: TestClient) -> None:
    listed = {a["name"]: a for a in client.get("/v1/architectures").json()}
    assert set(listed) == set(models.list_models())
    lenet = listed["lenet"]
    assert lenet["chapter"] == "7.6" and "LeNet" in lenet["description"]
    assert lenet["default_input_size"] == 28 and lenet["min_input_size"] == 12
    activation = lenet["options"]["properties"]["activation"]
    assert activation["enum"] == ["sigmoid", "relu"] and activation["default"] == "sigmoid"
    assert listed["vgg"]["options"]["properties"]["conv_arch"]["type"] == "array"


def test_lenet_on_digits_matches_the_books_parameter_count_and_shapes(client: TestClient) -> None:
    response = client.get("/v1/architectures/lenet", params={"dataset": "digits"})
    assert response.status_code == 200, response.text
    net = response.json()
    assert net["parameters"] == 61_706 and net["weight_bytes"] == 61_706 * 4
    assert net["input_shape"] == [1, 1, 28, 28]
    assert sum(layer["parameters"] for layer in net["layers"]) == 61_706
    shapes = [layer["output_shape"] for layer in net["layers"] if layer["type"] == "Conv2d"]
    assert shapes == [[1, 6, 28, 28], [1, 16, 10, 10]]
    assert net["flops"] == 833_040  # 2 x the multiply-adds of its convs and dense layers


def test_options_in_the_query_build_the_asked_net(client: TestClient) -> None:
    small = client.get(
        "/v1/architectures/vgg", params={"conv_arch": "[[1,16],[1,32]]", "input_size": 32}
    )
    assert small.status_code == 200, small.text
    default = client.get("/v1/architectures/vgg", params={"input_size": 32}).json()
    assert small.json()["parameters"] < default["parameters"]
    relu = client.get("/v1/architectures/lenet", params={"activation": "relu"}).json()
    assert {layer["type"] for layer in relu["layers"]} >= {"ReLU", "MaxPool2d"}


def test_flops_grow_with_the_input_side(client: TestClient) -> None:
    at_96 = client.get("/v1/architectures/resnet18", params={"input_size": 96}).json()["flops"]
    at_192 = client.get("/v1/architectures/resnet18", params={"input_size": 192}).json()["flops"]
    assert 3.5 < at_192 / at_96 < 4.5


def test_an_impossible_input_size_says_the_smallest_that_works(client: TestClient) -> None:
    response = client.get("/v1/architectures/alexnet", params={"input_size": 28})
    assert response.status_code == 422
    assert "at least 65" in response.json()["detail"]


def test_bad_names_and_options_are_client_errors(client: TestClient) -> None:
    assert client.get("/v1/architectures/lenet7").status_code == 404
    response = client.get("/v1/architectures/lenet", params={"dataset": "imagenet"})
    assert response.status_code == 422 and "digits" in response.json()["detail"]
    response = client.get("/v1/architectures/lenet", params={"depth": 3})
    assert response.status_code == 422 and "activation" in response.json()["detail"]


def test_the_attention_model_reports_its_single_parameter(client: TestClient) -> None:
    parametric = client.get(
        "/v1/architectures/nadaraya_watson", params={"parametric": "true"}
    ).json()
    plain = client.get("/v1/architectures/nadaraya_watson").json()
    assert (parametric["parameters"], plain["parameters"]) == (1, 0)
    assert parametric["task"] == "regression" and "11.2" in parametric["description"]

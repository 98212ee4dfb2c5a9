"""The registry refuses what it cannot build, with messages a user can act on."""

from __future__ import annotations

import json
import re

import pytest
from torch import nn

from models import (
    InvalidModelConfigError,
    UnknownModelError,
    get_architecture,
    get_model,
    list_models,
)
from models.registry import register_model

EXPECTED_NAMES = {
    "mlp",
    "lenet",
    "lenet_bn",
    "alexnet",
    "vgg",
    "vgg11_small",
    "nin",
    "googlenet",
    "resnet18",
    "resnet34",
    "nadaraya_watson",
}


def test_the_course_zoo_is_registered() -> None:
    assert EXPECTED_NAMES <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_entry_describes_chapter_and_paper(name: str) -> None:
    arch = get_architecture(name)
    assert f"ch. {arch.chapter}" in arch.description
    assert re.search(r"\b(19|20)\d\d\b", arch.description), "the paper's year is named"
    assert 1 <= arch.min_input_size <= arch.default_input_size
    assert arch.task in ("classification", "regression")
    json.dumps(arch.options)  # the API sends the defaults as JSON


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(UnknownModelError) as error:
        get_model("lenet7", in_channels=1, num_classes=10)
    for name in list_models():
        assert name in str(error.value)


def test_unknown_option_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidModelConfigError) as error:
        get_model("alexnet", in_channels=1, num_classes=10, dropuot=0.3)
    assert "dropuot" in str(error.value)
    assert "dropout" in str(error.value).split("options are:")[1]


@pytest.mark.parametrize(
    "name", [n for n in list_models() if get_architecture(n).min_input_size > 1]
)
def test_input_below_minimum_states_the_minimum(name: str) -> None:
    smallest = get_architecture(name).min_input_size
    with pytest.raises(InvalidModelConfigError, match=f"at least {smallest}"):
        get_model(name, in_channels=1, num_classes=10, input_size=smallest - 1)


@pytest.mark.parametrize(
    "name", [n for n in list_models() if get_architecture(n).min_input_size > 1]
)
def test_builders_refuse_small_inputs_on_their_own(name: str) -> None:
    """A net built without the registry's check fails as clearly as one built through it."""
    arch = get_architecture(name)
    with pytest.raises(ValueError, match=f"at least {arch.min_input_size}"):
        arch.builder(in_channels=1, num_classes=10, input_size=arch.min_input_size - 1)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("mlp", {"dropout": [0.2, 0.5]}, "one probability per hidden layer"),
        ("mlp", {"dropout": 1.0}, r"\[0, 1\)"),
        ("mlp", {"activation": "gelu"}, "relu, sigmoid, tanh"),
        ("mlp", {"hidden_sizes": [256, 0]}, "positive"),
        ("mlp", {"dropout_impl": "numpy"}, "torch, scratch"),
        ("lenet", {"activation": "tanh"}, "sigmoid, relu"),
        ("lenet_bn", {"batchnorm": "keras"}, "torch, scratch"),
        ("vgg", {"conv_arch": [[1, 64], [2]]}, "pairs"),
        ("vgg", {"conv_arch": [[1, 8]] * 8}, "at least 256"),
        ("alexnet", {"dropout": -0.1}, r"\[0, 1\)"),
        ("nadaraya_watson", {"parametric": "yes"}, "true or false"),
    ],
)
def test_bad_options_become_config_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(InvalidModelConfigError, match=message):
        get_model(name, in_channels=1, num_classes=10, **options)


def test_json_lists_are_accepted_for_tuple_options() -> None:
    """Options arrive from JSON, where tuples become lists."""
    vgg = get_model(
        "vgg", in_channels=1, num_classes=10, input_size=32, conv_arch=[[1, 8], [1, 16]]
    )
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.modules()) == 2
    mlp = get_model("mlp", in_channels=1, num_classes=10, hidden_sizes=[32, 16], dropout=[0.1, 0.2])
    assert [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)] == [32, 16, 10]


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(RuntimeError, match="twice"):
        register_model("lenet", chapter="7.6", default_input_size=28)(lambda **kw: nn.Identity())

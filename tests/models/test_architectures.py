"""Every classifier builds, runs forward and backward, and honours its declared input sizes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models import get_architecture, get_model, init_weights, scratch
from tests.models.zoo import classification_names

#: Option sets worth a forward pass besides the defaults (each family's switches).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "mlp": [
        {"hidden_sizes": [64, 32], "dropout": [0.2, 0.5], "activation": "tanh"},
        {"hidden_sizes": [64], "dropout": 0.5, "dropout_impl": "scratch", "activation": "sigmoid"},
        {"hidden_sizes": []},
    ],
    "lenet": [{"activation": "relu"}],
    "lenet_bn": [{"batchnorm": "scratch"}, {"activation": "relu"}],
    "vgg": [{"conv_arch": [[1, 8], [2, 16]], "dropout": 0.0}],
    "alexnet": [{"dropout": 0.0}],
    "nin": [{"dropout": 0.0}],
}


def cases() -> list[tuple[str, dict[str, Any]]]:
    return [(name, {}) for name in classification_names()] + [
        (name, options) for name in classification_names() for options in VARIANTS.get(name, [])
    ]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, options = case
    return name + ("-" + "-".join(f"{k}={v}" for k, v in options.items()) if options else "")


def mode_dependent(net: nn.Module) -> bool:
    """Whether train() and eval() should give different outputs: BatchNorm, or dropout p > 0."""
    for module in net.modules():
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, scratch.BatchNorm)):
            return True
        if isinstance(module, (nn.modules.dropout._DropoutNd, scratch.Dropout)) and module.p > 0:
            return True
    return False


@pytest.mark.parametrize("case", cases(), ids=case_id)
@pytest.mark.parametrize(("in_channels", "num_classes"), [(1, 10), (3, 2)])
def test_forward_backward_at_min_size(
    case: tuple[str, dict[str, Any]], in_channels: int, num_classes: int
) -> None:
    name, options = case
    side = get_architecture(name).min_input_size
    torch.manual_seed(0)
    net = get_model(
        name, in_channels=in_channels, num_classes=num_classes, input_size=side, **options
    )
    # He init keeps ReLU signals alive to the output (PyTorch's default can leave NiN's logits
    # constant at its smallest input, which would hide a train/eval difference).
    init_weights(net, "kaiming_normal")
    inputs = torch.randn(4, in_channels, side, side)

    outputs = net(inputs)
    assert outputs.shape == (4, num_classes)
    F.cross_entropy(outputs, torch.tensor([0, 1, 0, 1])).backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), param_name

    with torch.no_grad():
        torch.manual_seed(1)
        train_outputs = net.train()(inputs)
        eval_outputs = net.eval()(inputs)
    if mode_dependent(net):
        assert not torch.allclose(train_outputs, eval_outputs)
    else:
        assert torch.equal(train_outputs, eval_outputs)


@pytest.mark.parametrize("name", classification_names())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_output_shape_at_default_size(name: str, in_channels: int) -> None:
    """Shapes only, on the meta device: the course's sizes (224 for AlexNet) cost nothing."""
    side = get_architecture(name).default_input_size
    with torch.device("meta"):
        net = get_model(name, in_channels=in_channels, num_classes=7, input_size=side)
        outputs = net.eval()(torch.empty(2, in_channels, side, side))
    assert outputs.shape == (2, 7)


class _ReachedHead(Exception):
    """Raised at the first Flatten: the convolutional part survived the input."""


def features_survive(net: nn.Module, side: int) -> bool:
    """Whether an input of `side` gets through the conv part with a non-empty feature map."""

    def stop(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        raise _ReachedHead(tuple(args[0].shape))

    handles = [
        m.register_forward_pre_hook(stop) for m in net.modules() if isinstance(m, nn.Flatten)
    ]
    try:
        net.eval()(torch.empty(2, 1, side, side, device="meta"))
    except _ReachedHead as reached:
        return all(size > 0 for size in reached.args[0])
    except RuntimeError:
        return False
    finally:
        for handle in handles:
            handle.remove()
    return True


@pytest.mark.parametrize(
    "name", [n for n in classification_names() if get_architecture(n).min_input_size > 1]
)
def test_min_input_size_is_the_smallest_that_works(name: str) -> None:
    smallest = get_architecture(name).min_input_size
    with torch.device("meta"):
        net = get_model(name, in_channels=1, num_classes=10, input_size=smallest)
    assert features_survive(net, smallest)
    assert not features_survive(net, smallest - 1)


def test_mlp_flat_features_takes_tabular_rows() -> None:
    net = get_model("mlp", in_channels=1, num_classes=1, input_size=331, flat_features=True)
    assert net(torch.randn(5, 331)).shape == (5, 1)


def test_mlp_image_features_multiply_channels_and_sides() -> None:
    net = get_model("mlp", in_channels=3, num_classes=10, input_size=8, hidden_sizes=[16])
    first = next(m for m in net.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 3 * 8 * 8


def test_mlp_state_dict_keys_do_not_depend_on_dropout() -> None:
    with_dropout = get_model("mlp", in_channels=1, num_classes=10, hidden_sizes=[8, 8], dropout=0.5)
    without = get_model("mlp", in_channels=1, num_classes=10, hidden_sizes=[8, 8])
    assert with_dropout.state_dict().keys() == without.state_dict().keys()
    without.load_state_dict(with_dropout.state_dict())


def test_resnet_shortcut_conv_only_where_shape_changes() -> None:
    net = get_model("resnet18", in_channels=1, num_classes=10)
    shortcuts = [name for name, _ in net.named_modules() if name.endswith("conv3")]
    assert shortcuts == ["b3.0.conv3", "b4.0.conv3", "b5.0.conv3"]

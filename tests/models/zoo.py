"""Shared helpers for the model tests: which architectures exist, and which are big."""

from __future__ import annotations

import pytest
import torch

from models import count_parameters, get_architecture, get_model, list_models

#: Nets above this many parameters (at their smallest input) get the `slow` marker.
BIG_NET_PARAMETERS = 1_000_000


def classification_names() -> list[str]:
    """Every registered classifier: the loops below pick up a new net the day it registers."""
    return [name for name in list_models() if get_architecture(name).task == "classification"]


def parameters_at_min_size(name: str) -> int:
    """Parameter count on the meta device: nothing is allocated, so collection stays fast."""
    arch = get_architecture(name)
    with torch.device("meta"):
        net = get_model(name, in_channels=1, num_classes=10, input_size=arch.min_input_size)
    return count_parameters(net)


def by_size(names: list[str]) -> list[object]:
    """pytest params for `names`, with big nets marked slow."""
    return [
        pytest.param(name, marks=pytest.mark.slow)
        if parameters_at_min_size(name) > BIG_NET_PARAMETERS
        else name
        for name in names
    ]

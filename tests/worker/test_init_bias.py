"""`hyperparameters.init_bias`: zero biases (the default), or PyTorch's own, as the book's
`train_ch6` keeps them when it applies Xavier to the weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.factories import job_spec
from worker import engine


@pytest.mark.parametrize(("init_bias", "all_zero"), [("zero", True), ("default", False)])
def test_biases_follow_init_bias(tmp_path: Path, init_bias: str, all_zero: bool) -> None:
    spec = job_spec(hyperparameters={"init": "xavier_uniform", "init_bias": init_bias})
    data = engine.prepare_data(spec, tmp_path)
    torch.manual_seed(0)
    net = engine.build_network(spec, data)
    biases = [m.bias for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert biases and all(bool((b == 0).all()) == all_zero for b in biases)

"""The one training loop: a regression net and a classifier learn through the same `train_epoch`
and are scored by the same `evaluate`, told apart only by their objective."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.datasets import Split
from core.jobs.hyperparameters import Hyperparameters
from core.preprocessing import tabular_preprocessing
from worker.batches import Feed
from worker.objectives import REGRESSION, Objective, classification
from worker.training_loop import evaluate, train_epoch
from worker.training_state import MetricValues, TrainState

CPU = torch.device("cpu")
ROWS, FEATURES = 256, 4


def rows_split(features: torch.Tensor, labels: torch.Tensor) -> Split:
    """All `features` rows as one split, fed to the net as they are."""
    return Split(
        samples=features,
        labels=labels,
        rows=torch.arange(len(features)),
        preprocessing=tabular_preprocessing((FEATURES,), input_size=FEATURES),
    )


def train(net: nn.Module, split: Split, objective: Objective, *, epochs: int) -> list[MetricValues]:
    hp = Hyperparameters(lr=0.05, batch_size=16, layer_diagnostics=False)
    state = TrainState(
        net=net,
        forward=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=hp.lr),
        scheduler=None,
        scaler=None,
        feed=Feed(device=CPU),
    )
    generator = torch.Generator().manual_seed(0)
    return [
        train_epoch(state, split, hp=hp, generator=generator, epoch=epoch, objective=objective)
        for epoch in range(1, epochs + 1)
    ]


@pytest.fixture
def features() -> torch.Tensor:
    return torch.randn(ROWS, FEATURES, generator=torch.Generator().manual_seed(1))


def test_a_linear_regression_learns_its_weights_through_the_loop(features: torch.Tensor) -> None:
    targets = features @ torch.tensor([2.0, -3.4, 1.0, 0.5]) + 4.2
    split = rows_split(features, targets)
    torch.manual_seed(0)
    net = nn.Linear(FEATURES, 1)
    history = train(net, split, REGRESSION, epochs=10)
    losses = [metrics[("train", "loss")] for metrics in history]
    assert losses[-1] < losses[0] / 100
    assert ("train", "acc") not in history[-1]
    scored = evaluate(net, split, Feed(device=CPU), batch_size=100, objective=REGRESSION, name="t")
    with torch.no_grad():
        expected = F.mse_loss(net(features).squeeze(-1), targets).item()
    assert scored == {("t", "loss"): pytest.approx(expected, rel=1e-5)}


def test_a_classifier_learns_through_the_same_loop(features: torch.Tensor) -> None:
    classes = (features[:, 0] > 0).long() + (features[:, 1] > 0).long()  # 0, 1 or 2
    split = rows_split(features, classes)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, 3))
    objective = classification(label_smoothing=0.1)
    history = train(net, split, objective, epochs=30)
    assert history[-1][("train", "loss")] < history[0][("train", "loss")]
    assert history[0][("train", "acc")] < 0.6 and history[-1][("train", "acc")] > 0.9
    scored = evaluate(net, split, Feed(device=CPU), batch_size=100, objective=objective, name="t")
    with torch.no_grad():
        logits = net(features)
    assert scored[("t", "loss")] == pytest.approx(F.cross_entropy(logits, classes).item())
    assert scored[("t", "acc")] == (logits.argmax(dim=1) == classes).float().mean().item()

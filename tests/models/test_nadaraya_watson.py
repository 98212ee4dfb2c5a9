"""Nadaraya-Watson attention pooling (ch. 11.2): hand-checked, and trainable when parametric."""

from __future__ import annotations

import math

import pytest
import torch

from models import NadarayaWatson, count_parameters, get_architecture, get_model, leave_one_out


def test_registered_as_regression() -> None:
    assert get_architecture("nadaraya_watson").task == "regression"
    model = get_model("nadaraya_watson", in_channels=1, num_classes=1, parametric=True)
    assert isinstance(model, NadarayaWatson)
    assert count_parameters(model) == 1
    assert count_parameters(get_model("nadaraya_watson", in_channels=1, num_classes=1)) == 0


def test_non_parametric_prediction_is_the_kernel_weighted_average() -> None:
    keys, values, query = [0.0, 1.0, 3.0], [1.0, 2.0, 5.0], 0.5
    kernel = [math.exp(-((query - key) ** 2) / 2) for key in keys]
    expected = sum(k * v for k, v in zip(kernel, values, strict=True)) / sum(kernel)

    model = NadarayaWatson()
    prediction = model(torch.tensor([query]), torch.tensor(keys), torch.tensor(values))
    assert prediction.shape == (1,)
    assert prediction.item() == pytest.approx(expected, rel=1e-6)
    assert model.attention_weights is not None
    assert model.attention_weights[0].tolist() == pytest.approx(
        [k / sum(kernel) for k in kernel], rel=1e-6
    )


def test_attention_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    model = NadarayaWatson(parametric=True)
    model(torch.rand(7), torch.rand(12) * 5, torch.randn(12))
    assert model.attention_weights is not None
    assert model.attention_weights.shape == (7, 12)
    assert torch.allclose(model.attention_weights.sum(dim=1), torch.ones(7))


def test_leave_one_out_drops_each_example_from_its_own_row() -> None:
    inputs, targets = torch.arange(4.0), torch.arange(4.0) * 10
    keys, values = leave_one_out(inputs, targets)
    assert keys.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert torch.equal(values, keys * 10)


def test_per_query_keys_must_match_the_queries() -> None:
    with pytest.raises(ValueError, match="rows of keys"):
        NadarayaWatson()(torch.rand(3), torch.rand(4, 5), torch.rand(4, 5))
    with pytest.raises(ValueError, match="share a shape"):
        NadarayaWatson()(torch.rand(3), torch.rand(5), torch.rand(6))


def course_data(count: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """The course's toy set: x ~ U(0, 5) sorted, y = 2 sin x + x^0.8 + N(0, 0.5)."""
    torch.manual_seed(0)
    inputs, _ = torch.sort(torch.rand(count) * 5)
    targets = 2 * torch.sin(inputs) + inputs**0.8 + torch.normal(0.0, 0.5, (count,))
    return inputs, targets


def test_parametric_width_learns_with_the_courses_recipe() -> None:
    inputs, targets = course_data()
    keys, values = leave_one_out(inputs, targets)
    model = get_model("nadaraya_watson", in_channels=1, num_classes=1, parametric=True)
    assert isinstance(model, NadarayaWatson) and model.w is not None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(5):  # full-batch epochs, summed squared error
        loss = ((model(inputs, keys, values) - targets) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        assert model.w.grad is not None and model.w.grad.abs().item() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

    tests = torch.arange(0, 5, 0.1)
    predictions = model(tests, inputs, targets)
    assert predictions.shape == tests.shape
    assert model.attention_weights is not None
    assert model.attention_weights.shape == (50, 50)

"""The course's synthetic regression datasets: sizes, seeds, splits and tabular preprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.datasets import feature_count, get_dataset, load_raw, prepare
from core.datasets.regression import kernel_regression, linear_highdim, poly_regression
from core.preprocessing import Preprocessing, apply

SIZES = {  # name: (features, n_train, n_test), as the book
    "poly_regression": (20, 100, 100),
    "linear_highdim": (200, 20, 100),
    "kernel_regression": (1, 50, 50),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_regression_datasets_have_the_books_sizes_and_own_test_split(
    name: str, tmp_path: Path
) -> None:
    features, n_train, n_test = SIZES[name]
    info = get_dataset(name)
    assert (info.task, info.num_classes, info.raw_shape, info.tabular) == (
        "regression",
        1,
        (features,),
        True,
    )
    raw = load_raw(name, root=tmp_path)
    assert raw.inputs.shape == (n_train + n_test, features) and raw.test_from == n_train
    assert raw.targets.dtype == torch.float32 and raw.targets.shape == (n_train + n_test,)
    data = prepare(
        name, root=tmp_path, input_size=features, val_fraction=0.0, test_fraction=0.2, seed=0
    )
    assert (len(data.train), len(data.val), len(data.test)) == (n_train, 0, n_test)
    assert torch.equal(data.test.targets, raw.targets[n_train:])


def test_classification_datasets_keep_their_task_and_classes() -> None:
    digits = get_dataset("digits")
    assert (digits.task, digits.num_classes, digits.tabular) == ("classification", 10, False)


@pytest.mark.parametrize("generate", [poly_regression, linear_highdim, kernel_regression])
def test_the_same_seed_gives_the_same_data(generate) -> None:  # type: ignore[no-untyped-def]
    first, again, other = generate(0), generate(0), generate(1)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.targets, other.targets)


def test_poly_features_are_scaled_powers_and_targets_follow_the_true_weights() -> None:
    raw = poly_regression()
    x = raw.inputs[:, 1]
    assert torch.allclose(raw.inputs[:, 0], torch.ones(200))
    assert torch.allclose(raw.inputs[:, 3], x**3 / math.factorial(3), atol=1e-6)
    clean = raw.inputs[:, :4].double() @ torch.tensor([5, 1.2, -3.4, 5.6], dtype=torch.float64)
    noise = raw.targets.double() - clean
    assert 0.07 < noise.std().item() < 0.13


def test_kernel_regression_trains_on_sorted_noisy_points_and_tests_on_a_clean_grid() -> None:
    raw = kernel_regression()
    x_train, x_test = raw.inputs[:50, 0], raw.inputs[50:, 0]
    assert torch.equal(x_train, x_train.sort().values) and 0 <= x_train.min() < x_train.max() < 5
    assert torch.allclose(x_test, torch.arange(0, 5, 0.1))
    assert torch.allclose(raw.targets[50:], 2 * torch.sin(x_test) + x_test**0.8)


def test_linear_highdim_targets_follow_w_and_b() -> None:
    raw = linear_highdim()
    residual = raw.targets - (raw.inputs.sum(dim=1) * 0.01 + 0.05)
    assert residual.abs().max() < 0.05


def test_validation_is_held_out_from_the_training_part_only(tmp_path: Path) -> None:
    data = prepare(
        "poly_regression", root=tmp_path, input_size=4, val_fraction=0.1, test_fraction=0.2, seed=3
    )
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 100)


def test_tabular_preprocessing_takes_the_first_features_as_they_are(tmp_path: Path) -> None:
    data = prepare(
        "poly_regression", root=tmp_path, input_size=4, val_fraction=0.0, test_fraction=0.2, seed=0
    )
    prep = data.preprocessing
    assert prep.to_dict() == {
        "raw_shape": [20],
        "in_channels": 1,
        "input_size": 4,
        "scale": 1.0,
        "mean": [0.0],
        "std": [1.0],
        "layout": "tabular",
    }
    raw = load_raw("poly_regression", root=tmp_path)
    rebuilt = Preprocessing.from_dict(prep.to_dict())
    assert torch.equal(apply(rebuilt, raw.inputs[100:]), data.test.network_inputs())
    assert torch.equal(data.test.network_inputs(), raw.inputs[100:, :4])


def test_image_preprocessing_records_no_layout(tmp_path: Path) -> None:
    prep = prepare(
        "digits", root=tmp_path, input_size=8, val_fraction=0.1, test_fraction=0.2, seed=0
    ).preprocessing
    assert "layout" not in prep.to_dict()
    assert Preprocessing.from_dict(prep.to_dict()) == prep


def test_feature_count_defaults_to_all_and_refuses_too_many() -> None:
    info = get_dataset("poly_regression")
    assert (feature_count(info, None), feature_count(info, 2)) == (20, 2)
    with pytest.raises(ValueError, match="must be 1-20, got 21"):
        feature_count(info, 21)
